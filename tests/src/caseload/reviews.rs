//! Review steps on the generated visits. Review history is only written through `Store`, as the
//! person taking the step, so the store is reopened once per worker (to submit) and once per team
//! lead (to approve or return). Each step is a durable write, so this is the slowest phase per
//! document and its time is reported on its own.

use std::path::Path;

use outpost_core::{Author, DocId, ReviewAction, Store};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// Where a visit's review is meant to end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Draft,
    Submitted,
    Approved,
    Returned,
}

const RETURN_COMMENTS: &[&str] = &[
    "Please add what was agreed about the carer's assessment.",
    "The risks section needs the outcome of the falls discussion.",
    "Can you record whether consent to share with the GP was given?",
    "Please say who is doing each action and by when.",
];

/// Recent visits are still being written up; older ones have mostly been signed off.
pub fn plan(rng: &mut StdRng, age_days: i64) -> Outcome {
    let roll = rng.random_range(0..100);
    if age_days < 14 {
        if roll < 60 { Outcome::Draft } else { Outcome::Submitted }
    } else {
        match roll {
            0..85 => Outcome::Approved,
            85..90 => Outcome::Submitted,
            90..95 => Outcome::Returned,
            _ => Outcome::Draft,
        }
    }
}

/// A visit to take review steps on: who wrote it, who leads their team, where it should end up.
#[derive(Debug, Clone)]
pub struct Planned {
    pub visit: DocId,
    pub worker: usize,
    pub lead: usize,
    pub outcome: Outcome,
}

/// Takes every planned step; returns how many steps were taken.
pub fn apply(
    path: &Path,
    workers: &[Author],
    leads: &[Author],
    planned: &[Planned],
    rng: &mut StdRng,
) -> outpost_core::Result<usize> {
    let mut steps = 0;
    for (index, worker) in workers.iter().enumerate() {
        let mut store = Store::open(path, worker.clone())?;
        for p in planned
            .iter()
            .filter(|p| p.worker == index && p.outcome != Outcome::Draft)
        {
            store.review_visit(&p.visit, ReviewAction::Submit, None)?;
            steps += 1;
        }
    }
    for (index, lead) in leads.iter().enumerate() {
        let mut store = Store::open(path, lead.clone())?;
        for p in planned.iter().filter(|p| p.lead == index) {
            match p.outcome {
                Outcome::Approved => {
                    store.review_visit(&p.visit, ReviewAction::Approve, None)?;
                }
                Outcome::Returned => {
                    let comment = RETURN_COMMENTS.choose(rng).copied();
                    store.review_visit(&p.visit, ReviewAction::Return, comment)?;
                }
                Outcome::Draft | Outcome::Submitted => continue,
            }
            steps += 1;
        }
    }
    Ok(steps)
}
