//! What a generation run produced, and how long it took. Kept beside a cached store as
//! `key = value` lines, so a later benchmark run can report the generation it did not repeat.

use std::fmt;

use super::records::Extras;
use super::reviews::Outcome;
use super::typing::Typed;

/// Bumped whenever the generator's output changes, so cached stores from an older one are not used.
pub const GENERATOR_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub people: usize,
    pub visits: usize,
    pub assessments: usize,
    pub observations: usize,
    /// Observation sets with one extreme-but-possible value that needs confirming.
    pub extreme_observations: usize,
    pub actions: usize,
    pub overdue_actions: usize,
    pub done_actions: usize,
    pub cancelled_actions: usize,
    pub safeguarding_concerns: usize,
    pub drafts: usize,
    pub submitted: usize,
    pub approved: usize,
    pub returned: usize,
    pub review_steps: usize,
    /// Edits typing visit sections (each one Automerge change).
    pub typed_edits: usize,
    /// Of those, edits that deleted or replaced text.
    pub corrections: usize,
    /// Characters in visit sections once typed.
    pub section_chars: usize,
    /// Documents imported (people, visits, reviews, observations, assessments).
    pub documents: usize,
    /// Sum of `Document::save().len()` over every imported document, freshly saved.
    pub saved_bytes: u64,
    /// Building documents in memory: writing prose and typing it edit by edit.
    pub build_secs: f64,
    /// `Store::import_batch` calls.
    pub import_secs: f64,
    /// Durable review steps through `Store::review_visit`.
    pub review_secs: f64,
    pub elapsed_secs: f64,
}

impl Summary {
    pub(super) fn add_visit(&mut self, typed: &Typed, extras: &Extras) {
        self.visits += 1;
        self.typed_edits += typed.edits;
        self.corrections += typed.corrections;
        self.section_chars += typed.sections.iter().map(|(_, t)| t.chars().count()).sum::<usize>();
        self.actions += extras.actions;
        self.overdue_actions += extras.overdue;
        self.done_actions += extras.done;
        self.cancelled_actions += extras.cancelled;
        self.safeguarding_concerns += usize::from(extras.safeguarding);
    }

    pub(super) fn count_review(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Draft => {}
            Outcome::Submitted => self.submitted += 1,
            Outcome::Approved => self.approved += 1,
            Outcome::Returned => self.returned += 1,
        }
    }

    /// Each field as a `key = value` line.
    pub fn to_record(&self) -> String {
        self.fields().iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
    }

    /// Reads what `to_record` wrote; None if any field is missing or unreadable (an older file).
    pub fn from_record(text: &str) -> Option<Self> {
        let mut s = Summary::default();
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once(" = "))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.trim().to_string())
        };
        macro_rules! read {
            ($($field:ident),+) => { $( s.$field = value(stringify!($field))?.parse().ok()?; )+ };
        }
        read!(
            people,
            visits,
            assessments,
            observations,
            extreme_observations,
            actions,
            overdue_actions,
            done_actions,
            cancelled_actions,
            safeguarding_concerns,
            drafts,
            submitted,
            approved,
            returned,
            review_steps,
            typed_edits,
            corrections,
            section_chars,
            documents,
            saved_bytes,
            build_secs,
            import_secs,
            review_secs,
            elapsed_secs
        );
        Some(s)
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("people", self.people.to_string()),
            ("visits", self.visits.to_string()),
            ("assessments", self.assessments.to_string()),
            ("observations", self.observations.to_string()),
            ("extreme_observations", self.extreme_observations.to_string()),
            ("actions", self.actions.to_string()),
            ("overdue_actions", self.overdue_actions.to_string()),
            ("done_actions", self.done_actions.to_string()),
            ("cancelled_actions", self.cancelled_actions.to_string()),
            ("safeguarding_concerns", self.safeguarding_concerns.to_string()),
            ("drafts", self.drafts.to_string()),
            ("submitted", self.submitted.to_string()),
            ("approved", self.approved.to_string()),
            ("returned", self.returned.to_string()),
            ("review_steps", self.review_steps.to_string()),
            ("typed_edits", self.typed_edits.to_string()),
            ("corrections", self.corrections.to_string()),
            ("section_chars", self.section_chars.to_string()),
            ("documents", self.documents.to_string()),
            ("saved_bytes", self.saved_bytes.to_string()),
            ("build_secs", format!("{:.3}", self.build_secs)),
            ("import_secs", format!("{:.3}", self.import_secs)),
            ("review_secs", format!("{:.3}", self.review_secs)),
            ("elapsed_secs", format!("{:.3}", self.elapsed_secs)),
        ]
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_visit = |n: usize| n as f64 / self.visits.max(1) as f64;
        writeln!(
            f,
            "people {}, visits {}, assessments {}, observation sets {} ({} with an extreme value)",
            self.people, self.visits, self.assessments, self.observations, self.extreme_observations
        )?;
        writeln!(
            f,
            "typed edits {} ({:.0} per visit, {:.1}% corrections), section text {} chars ({:.0} per visit)",
            self.typed_edits,
            per_visit(self.typed_edits),
            100.0 * self.corrections as f64 / self.typed_edits.max(1) as f64,
            self.section_chars,
            per_visit(self.section_chars)
        )?;
        writeln!(
            f,
            "actions {} (done {}, cancelled {}, overdue {}), safeguarding concerns {}",
            self.actions, self.done_actions, self.cancelled_actions, self.overdue_actions, self.safeguarding_concerns
        )?;
        writeln!(
            f,
            "reviews: draft {}, submitted {}, approved {}, returned {} ({} durable steps)",
            self.drafts, self.submitted, self.approved, self.returned, self.review_steps
        )?;
        writeln!(
            f,
            "documents {}, freshly saved {} bytes ({:.0} per document)",
            self.documents,
            self.saved_bytes,
            self.saved_bytes as f64 / self.documents.max(1) as f64
        )?;
        write!(
            f,
            "time {:.1} s: building documents {:.1} s, import {:.1} s, review steps {:.1} s",
            self.elapsed_secs, self.build_secs, self.import_secs, self.review_secs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let s = Summary {
            people: 3,
            saved_bytes: 12_345,
            elapsed_secs: 1.5,
            ..Summary::default()
        };
        assert_eq!(Summary::from_record(&s.to_record()), Some(s));
        assert_eq!(Summary::from_record("people = 3\n"), None);
    }
}
