//! The child the crash test kills: it writes a burst of durable edits to a store and, after each
//! write returns, prints one line naming exactly what was saved. The parent SIGKILLs it at a
//! random point, reopens the store and checks every printed write is there.
//!
//! Usage: `crash-writer <store path> <worker id> <run>`. `run` numbers this process's writes:
//! write `n` of run `r` carries the marker token `r:n;`, unique across the store's whole life.
//!
//! Protocol (stdout, one line per write, printed only after the store returned `Ok`):
//! `saved <n> <kind> <doc id> [<token>]`, where kind is
//! - `person`: the person was created;
//! - `visit`: a visit (and its review document) was created;
//! - `text`: the token was appended to the visit's "what matters" section;
//! - `action`: in one change, the token was appended to the section and an action whose text is
//!   the token was added, so after a crash both or neither must be present;
//! - `observations`: a set of observations was created;
//! - `wound`: the observations' wound notes were set to the token (with a pulse reading);
//! - `submitted`: the visit's review was submitted (the visit is then left alone).

use std::io::Write;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use outpost_core::{
    Author, DeviceId, DocId, NewAction, NewObservations, NewPerson, NewVisit, PersonId, ReviewAction, ReviewState,
    RiskTier, Section, Setting, Store, TeamId, WorkerId,
};

/// A runaway child (one the parent failed to kill) stops after this many writes.
const MAX_WRITES: u64 = 5_000;

/// A visit holding this many tokens is submitted and a new one started: documents stay the size
/// of a real visit, so loading them stays cheap however many runs the store has seen.
const TOKENS_PER_VISIT: usize = 500;

/// Every action is due long ago, so `overdue_actions` lists all of them: the parent compares that
/// index query with the documents.
const ACTION_DUE: Option<NaiveDate> = NaiveDate::from_ymd_opt(2000, 1, 1);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Writer {
    store: Store,
    worker: WorkerId,
    run: u64,
    /// The next write's number.
    n: u64,
    out: std::io::StdoutLock<'static>,
}

impl Writer {
    fn token(&self) -> String {
        format!("{}:{};", self.run, self.n)
    }

    /// Called only after the write returned `Ok`: the line is the parent's evidence that the API
    /// reported it saved. `token` is given for the writes that stored this write's token.
    fn report(&mut self, kind: &str, doc: &DocId, token: Option<&str>) -> BoxResult<()> {
        let line = match token {
            Some(token) => format!("saved {} {kind} {doc} {token}\n", self.n),
            None => format!("saved {} {kind} {doc}\n", self.n),
        };
        // One write of a short line: a pipe delivers it whole or not at all.
        self.out.write_all(line.as_bytes())?;
        self.out.flush()?;
        self.n += 1;
        Ok(())
    }

    fn person(&mut self) -> BoxResult<PersonId> {
        if let Some(row) = self.store.caseload(&self.worker)?.into_iter().next() {
            return Ok(row.person);
        }
        let id = self.store.create_person(&NewPerson {
            name: "Crash Test".into(),
            preferred_name: None,
            date_of_birth: None,
            nhs_number: None,
            address: None,
            team: TeamId::new("crash-team")?,
            allocated_workers: vec![self.worker.clone()],
            risk: RiskTier::Low,
        })?;
        self.report("person", &id, None)?;
        Ok(id)
    }

    fn new_visit(&mut self, person: &PersonId) -> BoxResult<DocId> {
        let id = self.store.create_visit(&NewVisit {
            person: person.clone(),
            worker: self.worker.clone(),
            at: Utc::now(),
            setting: Setting::HomeVisit,
        })?;
        self.report("visit", &id, None)?;
        Ok(id)
    }
}

fn run() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, worker, run] = args.as_slice() else {
        return Err("usage: crash-writer <store path> <worker id> <run>".into());
    };
    let worker = WorkerId::new(worker.as_str())?;
    let author = Author::new(worker.clone(), DeviceId::new("crash-phone")?);
    let mut w = Writer {
        // Encrypted, as a phone's store is; the test opens it with the same key.
        store: Store::open_with_key(path, author, Some(&outpost_core::StoreKey::new(&[0x43; 32])?))?,
        worker,
        run: run.parse()?,
        n: 0,
        out: std::io::stdout().lock(),
    };

    let person = w.person()?;
    // The newest draft visit is the one being written; an earlier run may have died just after
    // creating it, before reporting it, and that is fine: this run reports what it writes there.
    let draft = w
        .store
        .visits_for_person(&person)?
        .into_iter()
        .find(|v| v.review_state == Some(ReviewState::Draft));
    let mut visit = match draft {
        Some(row) => row.visit,
        None => w.new_visit(&person)?,
    };
    let text = w.store.visit(&visit)?.section(Section::WhatMatters).to_owned();
    let (mut text_len, mut tokens) = (text.chars().count(), text.matches(';').count());
    let mut observations: Option<DocId> = None;

    while w.n < MAX_WRITES {
        let token = w.token();
        // Mostly plain typing, with other transaction shapes mixed in so a kill can land inside
        // each: an edit with an action, a new document, a second document's edit, a review, and
        // (every 256th edit of a document in one process) compaction.
        if tokens >= TOKENS_PER_VISIT {
            w.store.review_visit(&visit, ReviewAction::Submit, None)?;
            w.report("submitted", &visit, None)?;
            visit = w.new_visit(&person)?;
            (text_len, tokens) = (0, 0);
        } else if w.n % 41 == 17 {
            let id = w.store.create_observations(&NewObservations {
                person: person.clone(),
                nurse: w.worker.clone(),
                taken_at: Utc::now(),
            })?;
            w.report("observations", &id, None)?;
            observations = Some(id);
        } else if let (true, Some(id)) = (w.n % 41 == 29, observations.clone()) {
            let pulse = 50 + (w.n % 50) as i64;
            w.store.edit_observations(&id, |e| {
                e.set_pulse(pulse)?;
                e.set_wound_notes(&token)
            })?;
            w.report("wound", &id, Some(&token))?;
        } else {
            let with_action = w.n % 9 == 4;
            w.store.edit_visit(&visit, |e| {
                e.splice(Section::WhatMatters, text_len, 0, &token)?;
                if with_action {
                    e.add_action(&NewAction {
                        what: token.clone(),
                        who: "crash-writer".into(),
                        due: ACTION_DUE,
                    })?;
                }
                Ok(())
            })?;
            text_len += token.chars().count();
            tokens += 1;
            w.report(if with_action { "action" } else { "text" }, &visit, Some(&token))?;
        }
    }
    Ok(())
}
