//! What the crash test knows is on disk, and the checks it makes after every kill.
//!
//! The ledger holds every write a child reported saved, plus the one write (at most) per run that
//! reached the disk but was killed before its report. After a kill the reopened store must hold:
//! - every reported write: each token in its visit, each action, document, wound note, review;
//! - nothing else but that run's next write, whole: a token in the text is complete and in order,
//!   an action and its token (one change) are both there or neither, observations' pulse and
//!   wound note (one change) agree, a visit is never there without its review document;
//! - an index that agrees with the documents: every stored document is indexed under the person,
//!   the visits, their review states and every action are listed, and (in a full check) the index
//!   equals one rebuilt from the documents.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{NaiveDate, Utc};
use outpost_core::{DocId, ReviewState, Section, Store, WorkerId};

/// Write `n` of run `run`: the token `run:n;` it stored, if it stores one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    run: u64,
    n: u64,
}

impl Token {
    fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a whole token");
        let (run, n) = s.strip_suffix(';').ok_or_else(bad)?.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            run: run.parse().map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
        })
    }

    /// Splits a section's text into its tokens; anything that is not a run of whole tokens fails.
    fn split_text(text: &str) -> Result<Vec<Self>, String> {
        let mut tokens = Vec::new();
        let mut rest = text;
        while let Some(end) = rest.find(';') {
            tokens.push(Self::parse(&rest[..=end])?);
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("text ends in a torn token {rest:?}"));
        }
        Ok(tokens)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{};", self.run, self.n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Person,
    Visit,
    Text,
    Action,
    Observations,
    Wound,
    Submitted,
}

/// One line of the child's report: a write the API had returned `Ok` for.
#[derive(Debug, Clone)]
pub struct Write {
    pub n: u64,
    pub kind: Kind,
    pub doc: DocId,
    pub token: Option<Token>,
}

impl Write {
    /// Parses `saved <n> <kind> <doc id> [<token>]`, checking the token is the one write `n` of
    /// run `run` stores.
    pub fn parse(run: u64, line: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("run {run}: bad report {line:?}: {why}");
        let parts: Vec<&str> = line.split(' ').collect();
        let (n, kind, doc, token) = match parts.as_slice() {
            ["saved", n, kind, doc] => (n, kind, doc, None),
            ["saved", n, kind, doc, token] => (n, kind, doc, Some(Token::parse(token).map_err(|e| bad(&e))?)),
            _ => return Err(bad("not `saved <n> <kind> <doc> [<token>]`")),
        };
        let n: u64 = n.parse().map_err(|_| bad("n is not a number"))?;
        let kind = match *kind {
            "person" => Kind::Person,
            "visit" => Kind::Visit,
            "text" => Kind::Text,
            "action" => Kind::Action,
            "observations" => Kind::Observations,
            "wound" => Kind::Wound,
            "submitted" => Kind::Submitted,
            _ => return Err(bad("unknown kind")),
        };
        let carries_token = matches!(kind, Kind::Text | Kind::Action | Kind::Wound);
        if token.is_some() != carries_token || token.is_some_and(|t| t != Token { run, n }) {
            return Err(bad("wrong token for this write"));
        }
        Ok(Self {
            n,
            kind,
            doc: DocId::new(*doc).map_err(|e| bad(&e.to_string()))?,
            token,
        })
    }
}

/// What the store holds for one visit, as far as the checks have established.
#[derive(Debug, Default, Clone)]
struct VisitState {
    tokens: Vec<Token>,
    actions: BTreeSet<Token>,
    submitted: bool,
}

#[derive(Debug)]
pub struct Ledger {
    worker: WorkerId,
    person: Option<DocId>,
    visits: BTreeMap<DocId, VisitState>,
    /// Each set of observations with its wound note's token, if any.
    observations: BTreeMap<DocId, Option<Token>>,
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

impl Ledger {
    pub fn new(worker: &str) -> Self {
        Self {
            worker: WorkerId::new(worker).expect("worker id"),
            person: None,
            visits: BTreeMap::new(),
            observations: BTreeMap::new(),
        }
    }

    pub fn summary(&self) -> String {
        let tokens: usize = self.visits.values().map(|v| v.tokens.len()).sum();
        let actions: usize = self.visits.values().map(|v| v.actions.len()).sum();
        format!(
            "store holds {} visits, {tokens} tokens, {actions} actions, {} observations",
            self.visits.len(),
            self.observations.len()
        )
    }

    /// Checks the reopened store against the ledger and this run's reports, then records what
    /// the store holds. Returns whether it held one write more than was reported.
    pub fn check(&mut self, store: &mut Store, run: u64, writes: &[Write], full: bool) -> Result<bool, String> {
        ensure!(
            store.synchronous_mode().map_err(|e| e.to_string())? == 2,
            "the reopened store does not run with synchronous = FULL"
        );
        // The reports, in order; anything beyond them can only be the next write.
        for (i, w) in writes.iter().enumerate() {
            ensure!(w.n == i as u64, "report {i} names write {}", w.n);
        }
        let next = Token {
            run,
            n: writes.len() as u64,
        };
        let mut expected = self.expect(writes)?;
        let mut unreported = BTreeSet::new();

        let person = match self.check_person(store, &expected)? {
            Some((person, was_reported)) => {
                if !was_reported {
                    unreported.insert(format!("person {person} created"));
                }
                person
            }
            None => {
                ensure!(
                    store.all_heads().map_err(|e| e.to_string())?.is_empty(),
                    "the store holds documents but no person"
                );
                return Ok(false);
            }
        };
        expected.person = Some(person.clone());

        let found = self.find_new_documents(store, &person, &mut expected, &mut unreported)?;
        let to_read: BTreeSet<DocId> = if full {
            expected
                .visits
                .keys()
                .chain(expected.observations.keys())
                .cloned()
                .collect()
        } else {
            let drafts = store
                .visits_for_person(&person)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|v| v.review_state == Some(ReviewState::Draft))
                .map(|v| v.visit);
            writes
                .iter()
                .map(|w| w.doc.clone())
                .chain(found)
                .chain(drafts)
                .collect()
        };
        for id in &to_read {
            if let Some(state) = expected.visits.get_mut(id) {
                check_visit(store, id, state, next, &mut unreported)?;
            } else if let Some(wound) = expected.observations.get_mut(id) {
                check_observations(store, id, wound, next, &mut unreported)?;
            }
        }
        ensure!(
            unreported.len() <= 1,
            "more than one write beyond the reports reached the store: {unreported:?}"
        );
        expected.check_index(store, &person, full)?;
        *self = expected;
        Ok(!unreported.is_empty())
    }

    /// The ledger with this run's reports applied.
    fn expect(&self, writes: &[Write]) -> Result<Self, String> {
        let mut expected = Self {
            worker: self.worker.clone(),
            person: self.person.clone(),
            visits: self.visits.clone(),
            observations: self.observations.clone(),
        };
        for w in writes {
            let unknown = || format!("write {} is to {}, which no report or check has seen", w.n, w.doc);
            match w.kind {
                Kind::Person => {
                    ensure!(expected.person.is_none(), "a second person {} was created", w.doc);
                    expected.person = Some(w.doc.clone());
                }
                Kind::Visit => {
                    expected.visits.insert(w.doc.clone(), VisitState::default());
                }
                Kind::Observations => {
                    expected.observations.insert(w.doc.clone(), None);
                }
                Kind::Text | Kind::Action | Kind::Submitted => {
                    let visit = expected.visits.get_mut(&w.doc).ok_or_else(unknown)?;
                    if let Some(token) = w.token {
                        visit.tokens.push(token);
                        if w.kind == Kind::Action {
                            visit.actions.insert(token);
                        }
                    }
                    visit.submitted |= w.kind == Kind::Submitted;
                }
                Kind::Wound => *expected.observations.get_mut(&w.doc).ok_or_else(unknown)? = w.token,
            }
        }
        Ok(expected)
    }

    /// The worker's caseload must be exactly the one person; returns it and whether a report or
    /// earlier check accounts for it.
    fn check_person(&self, store: &Store, expected: &Self) -> Result<Option<(DocId, bool)>, String> {
        let caseload = store.caseload(&self.worker).map_err(|e| e.to_string())?;
        let people: Vec<DocId> = caseload.into_iter().map(|row| row.person).collect();
        match (&expected.person, people.as_slice()) {
            (Some(known), [found]) if known == found => Ok(Some((found.clone(), true))),
            (None, [found]) => Ok(Some((found.clone(), false))),
            (None, []) => Ok(None),
            (known, found) => Err(format!("the caseload holds {found:?}, expected {known:?}")),
        }
    }

    /// Every stored document must be indexed under the person and every reported one stored;
    /// documents no report names are the one unreported write, added to `expected`.
    fn find_new_documents(
        &self,
        store: &mut Store,
        person: &DocId,
        expected: &mut Self,
        unreported: &mut BTreeSet<String>,
    ) -> Result<Vec<DocId>, String> {
        let stored: BTreeSet<DocId> = store
            .all_heads()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let indexed: BTreeSet<DocId> = store
            .documents_of_person(person)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        ensure!(
            stored == indexed,
            "stored and indexed documents differ: stored only {:?}, indexed only {:?}",
            stored.difference(&indexed).collect::<Vec<_>>(),
            indexed.difference(&stored).collect::<Vec<_>>()
        );
        let mut known: BTreeSet<DocId> = expected
            .visits
            .keys()
            .chain(expected.observations.keys())
            .cloned()
            .collect();
        known.insert(person.clone());
        known.extend(expected.visits.keys().map(DocId::review_of));
        let missing: Vec<_> = known.difference(&stored).collect();
        ensure!(missing.is_empty(), "reported documents are missing: {missing:?}");

        let new: Vec<DocId> = stored.difference(&known).cloned().collect();
        let visits: BTreeSet<DocId> = store
            .visits_for_person(person)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|row| row.visit)
            .collect();
        for id in &new {
            if id.as_str().ends_with(".review") {
                continue; // checked with its visit
            }
            if visits.contains(id) {
                ensure!(
                    new.contains(&DocId::review_of(id)),
                    "visit {id} was stored without its review document"
                );
                expected.visits.insert(id.clone(), VisitState::default());
                unreported.insert(format!("visit {id} created"));
            } else {
                store
                    .observations(id)
                    .map_err(|e| format!("unreported document {id} is neither a visit nor observations: {e}"))?;
                expected.observations.insert(id.clone(), None);
                unreported.insert(format!("observations {id} created"));
            }
        }
        Ok(new)
    }

    /// The index must list exactly the visits, review states and actions the documents hold; in
    /// a full check it must also equal an index rebuilt from the documents.
    fn check_index(&self, store: &mut Store, person: &DocId, full: bool) -> Result<(), String> {
        let rows = store.visits_for_person(person).map_err(|e| e.to_string())?;
        let listed: BTreeMap<DocId, Option<ReviewState>> =
            rows.into_iter().map(|r| (r.visit, r.review_state)).collect();
        let states: BTreeMap<DocId, Option<ReviewState>> = self
            .visits
            .iter()
            .map(|(id, v)| {
                let state = if v.submitted {
                    ReviewState::Submitted
                } else {
                    ReviewState::Draft
                };
                (id.clone(), Some(state))
            })
            .collect();
        ensure!(
            listed == states,
            "visits index {listed:?} differs from the visits {states:?}"
        );

        let today = Utc::now().date_naive();
        let overdue: BTreeSet<(DocId, String)> = store
            .overdue_actions(today)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|a| (a.visit, a.what))
            .collect();
        let actions: BTreeSet<(DocId, String)> = self
            .visits
            .iter()
            .flat_map(|(id, v)| v.actions.iter().map(move |t| (id.clone(), t.to_string())))
            .collect();
        ensure!(
            overdue == actions,
            "actions index differs from the documents: index only {:?}, documents only {:?}",
            overdue.difference(&actions).collect::<Vec<_>>(),
            actions.difference(&overdue).collect::<Vec<_>>()
        );

        if full {
            let live = store.index_dump().map_err(|e| e.to_string())?;
            let skipped = store.rebuild_index().map_err(|e| e.to_string())?;
            ensure!(
                skipped.is_empty(),
                "documents could not be read to rebuild the index: {skipped:?}"
            );
            let rebuilt = store.index_dump().map_err(|e| e.to_string())?;
            if live != rebuilt {
                let stale: Vec<_> = live.iter().filter(|row| !rebuilt.contains(row)).take(5).collect();
                let lacking: Vec<_> = rebuilt.iter().filter(|row| !live.contains(row)).take(5).collect();
                return Err(format!(
                    "the index differs from one rebuilt from the documents: stale rows {stale:?}, missing rows {lacking:?}"
                ));
            }
        }
        Ok(())
    }
}

/// Reads a visit back: its text must be whole tokens, in order, holding every expected token and
/// at most the next write's; the same for its actions, each of which must have its token in the
/// text; its review as expected. Updates `state` to what the store holds.
fn check_visit(
    store: &mut Store,
    id: &DocId,
    state: &mut VisitState,
    next: Token,
    unreported: &mut BTreeSet<String>,
) -> Result<(), String> {
    let visit = store
        .visit(id)
        .map_err(|e| format!("visit {id} does not read back: {e}"))?;
    let text = visit.section(Section::WhatMatters);
    let tokens = Token::split_text(text).map_err(|e| format!("visit {id}: {e}"))?;
    ensure!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "visit {id}: tokens out of order or repeated in {text:?}"
    );
    let held: BTreeSet<Token> = tokens.iter().copied().collect();
    let lost: Vec<String> = state
        .tokens
        .iter()
        .filter(|t| !held.contains(t))
        .map(Token::to_string)
        .collect();
    ensure!(
        lost.is_empty(),
        "visit {id}: edits reported saved are missing: {lost:?}"
    );
    let expected: BTreeSet<Token> = state.tokens.iter().copied().collect();
    for extra in held.difference(&expected) {
        ensure!(
            *extra == next,
            "visit {id}: token {extra} is in the text but was neither reported nor the next write ({next})"
        );
        unreported.insert(format!("token {extra}"));
    }

    let mut actions = BTreeSet::new();
    for action in &visit.actions {
        let what = action.what.as_ref().map(|f| f.value.as_str()).unwrap_or_default();
        let token = Token::parse(what).map_err(|e| format!("visit {id}: action: {e}"))?;
        ensure!(
            held.contains(&token),
            "visit {id}: action {token} is there without its text (they were one change)"
        );
        ensure!(
            !action.done
                && !action.cancelled
                && action.due.as_ref().map(|f| f.value) == NaiveDate::from_ymd_opt(2000, 1, 1),
            "visit {id}: action {token} is not as written: {action:?}"
        );
        ensure!(actions.insert(token), "visit {id}: action {token} appears twice");
    }
    let lost: Vec<String> = state.actions.difference(&actions).map(Token::to_string).collect();
    ensure!(
        lost.is_empty(),
        "visit {id}: actions reported saved are missing: {lost:?}"
    );
    for extra in actions.difference(&state.actions) {
        ensure!(
            *extra == next,
            "visit {id}: action {extra} was neither reported nor the next write"
        );
    }

    let review = store
        .review(id)
        .map_err(|e| format!("review of {id} does not read back: {e}"))?;
    let submitted = match review.state.value {
        ReviewState::Draft => false,
        ReviewState::Submitted => true,
        other => return Err(format!("visit {id}: review is {other:?}; the child only submits")),
    };
    if submitted != state.submitted {
        ensure!(submitted, "visit {id}: a submission reported saved is missing");
        unreported.insert(format!("visit {id} submitted"));
    }
    *state = VisitState {
        tokens,
        actions,
        submitted,
    };
    Ok(())
}

/// Reads observations back: the wound note is the last reported token or the next write's, and
/// the pulse written in the same change matches it.
fn check_observations(
    store: &mut Store,
    id: &DocId,
    wound: &mut Option<Token>,
    next: Token,
    unreported: &mut BTreeSet<String>,
) -> Result<(), String> {
    let obs = store
        .observations(id)
        .map_err(|e| format!("observations {id} do not read back: {e}"))?;
    let held = match obs.wound_notes.as_str() {
        "" => None,
        notes => Some(Token::parse(notes).map_err(|e| format!("observations {id}: wound notes: {e}"))?),
    };
    if held != *wound {
        ensure!(
            held == Some(next),
            "observations {id}: wound notes hold {held:?}, but the last reported was {wound:?}"
        );
        unreported.insert(format!("token {next}"));
    }
    let pulse = obs.recorded.pulse.as_ref().map(|f| f.value);
    let written_with = held.map(|t| 50 + (t.n % 50) as i64);
    ensure!(
        pulse == written_with,
        "observations {id}: pulse {pulse:?} does not match wound notes {held:?} (they were one change)"
    );
    *wound = held;
    Ok(())
}
