//! Loading records for a page, checked against the lead's teams, and how assessments and
//! observations are shown wherever they appear.

use std::collections::HashMap;

use maud::{Markup, html};
use outpost_core::{Assessment, Author, DeviceId, DocId, Field, Observations, Outcome, Record, WorkerId, template};

use super::{Lead, PageError, show_time};
use crate::AppState;
use crate::auth::blocking;
use crate::review::SERVER_DEVICE;
use crate::storage::{Storage, StoredDoc};

/// A stored document of `doc_type` the lead may see, loaded; anything else is `NotFound`.
pub fn load(storage: &dyn Storage, lead: &Lead, id: &str, doc_type: &str) -> Result<(Record, StoredDoc), PageError> {
    let id = DocId::new(id).map_err(|_| PageError::NotFound)?;
    let stored = storage
        .doc(&id)?
        .filter(|d| d.doc_type == doc_type)
        .ok_or(PageError::NotFound)?;
    let team = storage.person_team(&stored.person)?.ok_or(PageError::NotFound)?;
    if !lead.may_see(&team) {
        return Err(PageError::NotFound);
    }
    let record = Record::load(id, &stored.snapshot).map_err(|e| PageError::Internal(e.into()))?;
    Ok((record, stored))
}

/// How people and devices are named on the pages: workers of the lead's teams by name, and
/// their devices by the label given at enrolment.
#[derive(Debug, Default)]
pub struct Names {
    workers: HashMap<WorkerId, String>,
    devices: HashMap<DeviceId, String>,
}

impl Names {
    pub async fn load(state: &AppState, lead: &Lead) -> Result<Self, PageError> {
        let storage = state.storage.clone();
        let teams = lead.teams.clone();
        blocking(move || {
            let workers: HashMap<WorkerId, String> = storage
                .team_workers(&teams)?
                .into_iter()
                .map(|(id, name, _)| (id, name))
                .collect();
            let devices = storage
                .devices()?
                .into_iter()
                .filter(|d| workers.contains_key(&d.worker))
                .map(|d| (d.device, d.label))
                .collect();
            Ok(Self { workers, devices })
        })
        .await
        .map_err(PageError::from)
    }

    /// A worker's name and id, or the id alone for someone outside the lead's teams.
    pub fn worker(&self, worker: &WorkerId) -> String {
        match self.workers.get(worker) {
            Some(name) => format!("{name} ({worker})"),
            None => worker.to_string(),
        }
    }

    /// An author as a lead reads it: the worker, and the device they wrote on.
    pub fn author(&self, author: &Author) -> String {
        let worker = self.worker(&author.worker);
        if author.device.as_str() == SERVER_DEVICE {
            return format!("{worker}, on the review pages");
        }
        match self.devices.get(&author.device) {
            Some(label) => format!("{worker}, on {label}"),
            None => format!("{worker}, on device {}", author.device),
        }
    }
}

/// A field's value, with any value written at the same time beside it.
pub fn field<T>(field: &Field<T>, show: impl Fn(&T) -> String) -> Markup {
    html! {
        (show(&field.value))
        @if field.is_contested() {
            " " span.tag.changed { "Also recorded at the same time: "
                (field.concurrent.iter().map(&show).collect::<Vec<_>>().join("; ")) }
        }
    }
}

pub fn opt_field<T>(value: &Option<Field<T>>, show: impl Fn(&T) -> String) -> Markup {
    match value {
        Some(f) => field(f, show),
        None => html! { span.empty { "Not recorded" } },
    }
}

pub fn assessment(a: &Assessment) -> Markup {
    let known = template(&a.template_id, a.template_version);
    let question_text = |id: &str| {
        known
            .and_then(|t| t.sections.iter().flat_map(|s| s.questions.iter()).find(|q| q.id == id))
            .map_or_else(|| id.to_string(), |q| q.text.to_string())
    };
    html! {
        h3 { (known.map_or(a.template_id.as_str(), |t| t.title)) " – " (show_time(a.at.value.timestamp())) }
        p { "Assessor: " (field(&a.assessor, String::clone)) }
        @if a.answers.is_empty() {
            p.empty { "No answers yet." }
        } @else {
            table {
                caption { "Answers" }
                thead { tr { th scope="col" { "Question" } th scope="col" { "Outcome" } th scope="col" { "Note" } } }
                tbody {
                    @for answer in &a.answers {
                        tr {
                            td { (question_text(&answer.question)) }
                            td { (field(&answer.outcome, |o| outcome(*o).to_string())) }
                            td.text-cell { (opt_field(&answer.note, String::clone)) }
                        }
                    }
                }
            }
        }
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Achieves => "Achieves",
        Outcome::AchievesWithDifficulty => "Achieves with difficulty",
        Outcome::CannotAchieve => "Cannot achieve",
        Outcome::NotAssessed => "Not assessed",
    }
}

pub fn observations(o: &Observations) -> Markup {
    let v = &o.recorded;
    let int = |x: &i64| x.to_string();
    html! {
        h3 { "Observations – " (show_time(o.taken_at.value.timestamp())) }
        p {
            @match &o.news2 {
                Some(news2) => { "NEWS2 score " strong { (news2.total) } ", " strong { (news2.risk.name()) } " clinical risk." }
                None => { "NEWS2 not scored: a value is missing or holds two readings." }
            }
        }
        @if !o.needs_confirmation.is_empty() {
            p.notice {
                "Values flagged for confirmation: "
                (o.needs_confirmation.iter().map(|p| p.name().replace('_', " ")).collect::<Vec<_>>().join(", "))
            }
        }
        dl.facts {
            dt { "Respiration rate" } dd { (opt_field(&v.respiration_rate, int)) }
            dt { "Oxygen saturation (%)" } dd { (opt_field(&v.oxygen_saturation, int)) }
            dt { "Supplemental oxygen" } dd { (opt_field(&v.supplemental_oxygen, |b| if *b { "Yes".into() } else { "No".into() })) }
            dt { "Systolic blood pressure" } dd { (opt_field(&v.systolic_blood_pressure, int)) }
            dt { "Pulse" } dd { (opt_field(&v.pulse, int)) }
            dt { "Consciousness" } dd { (opt_field(&v.consciousness, String::clone)) }
            dt { "Temperature (°C)" } dd { (opt_field(&v.temperature, |t| format!("{t:.1}"))) }
            dt { "Nurse" } dd { (field(&o.nurse, String::clone)) }
        }
        @if !o.wound_notes.is_empty() {
            h4 { "Wound notes" }
            p.text dir="auto" { (o.wound_notes) }
        }
    }
}
