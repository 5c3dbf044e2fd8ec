//! What workers do on their devices between syncs: add people and visits, type into a visit's
//! sections, add, reword and cancel agreed actions, change a visit's setting and a person's
//! risk tier and address, and submit visits for review. Every edit is a real change (text is
//! always inserted, and a field is set to a value it does not hold), so what the seed decides
//! is what happens.

use std::collections::{BTreeSet, HashMap};

use chrono::{TimeZone, Utc};
use outpost_core::{
    ChangeHash, DocId, ItemId, NewAction, NewPerson, NewVisit, PersonId, ReviewAction, RiskTier, Section, Setting,
    Store, TeamId, WorkerId,
};

use super::Failure;

/// A document the scheduler knows by the order it was made in, the same in every run of a
/// seed (document ids are random).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DocRef {
    Person(usize),
    Visit(usize),
    Review(usize),
}

/// Everything made so far, in the order it was made.
#[derive(Debug, Default)]
pub(super) struct Registry {
    pub people: Vec<PersonId>,
    pub visits: Vec<VisitEntry>,
    by_id: HashMap<DocId, DocRef>,
}

#[derive(Debug)]
pub(super) struct VisitEntry {
    pub id: DocId,
    pub creator: usize,
    pub submitted: bool,
    pub decided: bool,
    /// Actions added, with the device that added them (only it rewords or cancels them, so it
    /// certainly holds them).
    pub actions: Vec<(usize, ItemId)>,
}

impl Registry {
    pub fn find(&self, id: &DocId) -> Option<DocRef> {
        self.by_id.get(id).copied()
    }
}

/// The kinds of edit, for the run's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Edit {
    NewPerson,
    NewVisit,
    Type,
    Retype,
    AddAction,
    RewordAction,
    CancelAction,
    Setting,
    Risk,
    Address,
    Submit,
}

const MAX_PEOPLE: usize = 4;
const MAX_VISITS: usize = 12;
const WORDS: [&str; 12] = [
    "tea ",
    "garden ",
    "daughter ",
    "walks ",
    "church ",
    "bus ",
    "cooking ",
    "pain ",
    "sleep ",
    "choir ",
    "café ",
    "grandson ",
];
const SETTINGS: [Setting; 4] = [
    Setting::HomeVisit,
    Setting::Clinic,
    Setting::Phone,
    Setting::CommunityHub,
];
const RISKS: [RiskTier; 3] = [RiskTier::High, RiskTier::Medium, RiskTier::Low];

/// The heads each document an edit changed reached.
pub(super) type Saved = Vec<(DocId, Vec<ChangeHash>)>;

/// The item at `draw` (in [0, 1)) along `items`.
pub(super) fn pick<T>(items: &[T], draw: f64) -> Option<&T> {
    let index = (draw * items.len() as f64) as usize;
    items.get(index.min(items.len().saturating_sub(1)))
}

/// One edit by device `me`, chosen by `draws` (eight numbers in [0, 1)) among what it
/// certainly holds. Returns what it did and the heads each changed document reached.
pub(super) fn edit(
    store: &mut Store,
    me: usize,
    worker: &WorkerId,
    team: &str,
    registry: &mut Registry,
    known: &mut BTreeSet<DocRef>,
    draws: &[f64],
) -> Result<Option<(Edit, Saved)>, Failure> {
    let people: Vec<usize> = known
        .iter()
        .filter_map(|d| if let DocRef::Person(p) = d { Some(*p) } else { None })
        .collect();
    let visits: Vec<usize> = known
        .iter()
        .filter_map(|d| if let DocRef::Visit(v) = d { Some(*v) } else { None })
        .collect();
    let mut kind = match draws[0] {
        x if x < 0.06 => Edit::NewPerson,
        x if x < 0.16 => Edit::NewVisit,
        x if x < 0.46 => Edit::Type,
        x if x < 0.56 => Edit::Retype,
        x if x < 0.63 => Edit::AddAction,
        x if x < 0.68 => Edit::RewordAction,
        x if x < 0.71 => Edit::CancelAction,
        x if x < 0.78 => Edit::Setting,
        x if x < 0.84 => Edit::Risk,
        x if x < 0.90 => Edit::Address,
        _ => Edit::Submit,
    };
    // A device with nothing to edit starts on someone new.
    if people.is_empty() || (visits.is_empty() && kind != Edit::NewPerson) {
        kind = if people.is_empty() {
            Edit::NewPerson
        } else {
            Edit::NewVisit
        };
    }
    let word = pick(&WORDS, draws[3]).copied().unwrap_or("tea ");
    let visit = pick(&visits, draws[1]).copied();
    let saved = match kind {
        Edit::NewPerson => {
            if registry.people.len() >= MAX_PEOPLE {
                return Ok(None);
            }
            let person = store.create_person(&NewPerson {
                name: format!("Person {}", registry.people.len() + 1),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: Some(format!("{} Mill Lane", draws[2].mul_add(90.0, 1.0) as u32)),
                team: TeamId::new(team)?,
                allocated_workers: vec![worker.clone()],
                risk: *pick(&RISKS, draws[3]).unwrap_or(&RiskTier::Low),
            })?;
            let index = registry.people.len();
            registry.people.push(person.clone());
            registry.by_id.insert(person.clone(), DocRef::Person(index));
            known.insert(DocRef::Person(index));
            vec![(person.clone(), store.heads(&person)?)]
        }
        Edit::NewVisit => {
            let Some(&person) = pick(&people, draws[1]) else {
                return Ok(None);
            };
            if registry.visits.len() >= MAX_VISITS {
                return Ok(None);
            }
            let id = store.create_visit(&NewVisit {
                person: registry.people[person].clone(),
                worker: worker.clone(),
                at: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap_or_default()
                    + chrono::Duration::hours(registry.visits.len() as i64),
                setting: *pick(&SETTINGS, draws[2]).unwrap_or(&Setting::HomeVisit),
            })?;
            let index = registry.visits.len();
            let review = DocId::review_of(&id);
            registry.by_id.insert(id.clone(), DocRef::Visit(index));
            registry.by_id.insert(review.clone(), DocRef::Review(index));
            registry.visits.push(VisitEntry {
                id: id.clone(),
                creator: me,
                submitted: false,
                decided: false,
                actions: Vec::new(),
            });
            known.insert(DocRef::Visit(index));
            known.insert(DocRef::Review(index));
            vec![(id.clone(), store.heads(&id)?), (review.clone(), store.heads(&review)?)]
        }
        Edit::Type | Edit::Retype => {
            let Some(v) = visit else { return Ok(None) };
            let id = registry.visits[v].id.clone();
            let section = *pick(&Section::ALL, draws[2]).unwrap_or(&Section::WhatMatters);
            let len = store.visit(&id)?.section(section).chars().count();
            let at = ((draws[4] * (len + 1) as f64) as usize).min(len);
            let delete = if kind == Edit::Retype {
                ((draws[5] * 6.0) as usize).min(len - at)
            } else {
                0
            };
            let saved = store.edit_visit(&id, |v| v.splice(section, at, delete, word))?;
            vec![(id, saved.heads)]
        }
        Edit::AddAction | Edit::RewordAction | Edit::CancelAction => {
            let Some(v) = visit else { return Ok(None) };
            let id = registry.visits[v].id.clone();
            let mine: Vec<ItemId> = registry.visits[v]
                .actions
                .iter()
                .filter(|(by, _)| *by == me)
                .map(|(_, item)| item.clone())
                .collect();
            let target = pick(&mine, draws[2]).cloned();
            let what = format!("{}by {}", word, draws[4].mul_add(1000.0, 0.0) as u32);
            let saved = match (kind, target) {
                (Edit::RewordAction, Some(item)) => {
                    store.edit_visit(&id, |v| v.edit_action(&item, Some(&what), None, None))?
                }
                (Edit::CancelAction, Some(item)) => {
                    // Cancelling twice changes nothing, so only an action still open is cancelled.
                    let open = store.visit(&id)?.actions.iter().any(|a| a.id == item && !a.cancelled);
                    if !open {
                        return Ok(None);
                    }
                    store.edit_visit(&id, |v| v.cancel_action(&item))?
                }
                _ => {
                    let mut added = None;
                    let saved = store.edit_visit(&id, |v| {
                        added = Some(v.add_action(&NewAction {
                            what: what.clone(),
                            who: "worker".into(),
                            due: chrono::NaiveDate::from_ymd_opt(2026, 4, 1),
                        })?);
                        Ok(())
                    })?;
                    if let Some(item) = added {
                        registry.visits[v].actions.push((me, item));
                    }
                    kind = Edit::AddAction;
                    saved
                }
            };
            vec![(id, saved.heads)]
        }
        Edit::Setting => {
            let Some(v) = visit else { return Ok(None) };
            let id = registry.visits[v].id.clone();
            let field = store.visit(&id)?.setting;
            let held: Vec<Setting> = std::iter::once(field.value).chain(field.concurrent).collect();
            let Some(setting) = unheld(&SETTINGS, &held, draws[2]) else {
                return Ok(None);
            };
            vec![(id.clone(), store.edit_visit(&id, |v| v.set_setting(setting))?.heads)]
        }
        Edit::Risk | Edit::Address => {
            let Some(&p) = pick(&people, draws[1]) else {
                return Ok(None);
            };
            let id = registry.people[p].clone();
            let saved = if kind == Edit::Risk {
                let field = store.person(&id)?.risk;
                let held: Vec<RiskTier> = std::iter::once(field.value).chain(field.concurrent).collect();
                let Some(risk) = unheld(&RISKS, &held, draws[2]) else {
                    return Ok(None);
                };
                store.edit_person(&id, |p| p.set_risk(risk))?
            } else {
                let address = format!("{} {word}Row", draws[4].mul_add(10_000.0, 1.0) as u32);
                store.edit_person(&id, |p| p.set_address(Some(&address)))?
            };
            vec![(id, saved.heads)]
        }
        Edit::Submit => {
            let own: Vec<usize> = visits
                .iter()
                .copied()
                .filter(|v| registry.visits[*v].creator == me && !registry.visits[*v].submitted)
                .collect();
            let Some(&v) = pick(&own, draws[1]) else {
                return Ok(None);
            };
            let id = registry.visits[v].id.clone();
            store.review_visit(&id, ReviewAction::Submit, None)?;
            registry.visits[v].submitted = true;
            let review = DocId::review_of(&id);
            vec![(review.clone(), store.heads(&review)?)]
        }
    };
    Ok(Some((kind, saved)))
}

/// A value of `all` that the field does not hold (so setting it is a change), chosen by `draw`.
fn unheld<T: Copy + PartialEq>(all: &[T], held: &[T], draw: f64) -> Option<T> {
    let free: Vec<T> = all.iter().copied().filter(|v| !held.contains(v)).collect();
    pick(&free, draw).copied()
}
