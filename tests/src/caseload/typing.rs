//! Typing a visit note as a worker does on a phone: a word or so per edit, with the odd slip
//! backspaced and retyped, and now and then a word selected and replaced. Each edit is one
//! Automerge change, so the document's history has the size and shape of a real note's.

use outpost_core::{Document, Section};
use rand::Rng;
use rand::rngs::StdRng;

use super::phrases::RETYPES;

/// Chance that a chunk is mistyped, then backspaced and retyped (three edits, one deleting).
const TYPO: f64 = 0.07;
/// Chance that after a chunk the worker selects an earlier word and retypes it (one edit).
const RETYPE: f64 = 0.045;
/// Edits per chunk on average, so the chunk size can be chosen to hit an edit count.
const EDITS_PER_CHUNK: f64 = 1.0 + 2.0 * TYPO + RETYPE;

/// What typing one visit took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Typed {
    /// Edits made, each one Automerge change.
    pub edits: usize,
    /// Edits that deleted or replaced text.
    pub corrections: usize,
    /// The text each section ended with.
    pub sections: Vec<(Section, String)>,
}

/// Neighbouring keys on a QWERTY keyboard, for believable slips.
fn slip(c: char) -> char {
    const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
    for row in ROWS {
        let keys: Vec<char> = row.chars().collect();
        if let Some(i) = keys.iter().position(|k| *k == c.to_ascii_lowercase()) {
            return if i + 1 < keys.len() { keys[i + 1] } else { keys[i - 1] };
        }
    }
    'e'
}

/// Types `plan` into the visit in about `edits` edits.
pub fn type_visit(
    doc: &mut Document,
    rng: &mut StdRng,
    plan: &[(Section, String)],
    edits: usize,
) -> outpost_core::Result<Typed> {
    let total: usize = plan.iter().map(|(_, t)| t.chars().count()).sum();
    let chunks = (edits as f64 / EDITS_PER_CHUNK).max(1.0);
    let mean = (total as f64 / chunks).max(1.0);
    let mut typed = Typed::default();
    for (section, text) in plan {
        let section = *section;
        let planned: Vec<char> = text.chars().collect();
        // What the section holds now, mirrored here so edit positions are known.
        let mut current: Vec<char> = Vec::with_capacity(planned.len());
        let mut next = 0;
        while next < planned.len() {
            let len = (rng.random_range(0.5..1.5) * mean).round().max(1.0) as usize;
            let chunk: Vec<char> = planned[next..(next + len).min(planned.len())].to_vec();
            next += chunk.len();
            if rng.random_bool(TYPO) {
                // Type it with a slip, notice, backspace to the slip and type the rest again.
                let at = rng.random_range(0..chunk.len());
                let mut wrong = chunk.clone();
                wrong[at] = slip(chunk[at]);
                let end = current.len();
                splice(doc, &mut current, section, end, 0, &wrong)?;
                let back = chunk.len() - at;
                splice(doc, &mut current, section, end + at, back, &[])?;
                splice(doc, &mut current, section, end + at, 0, &chunk[at..])?;
                typed.edits += 3;
                typed.corrections += 1;
            } else {
                let end = current.len();
                splice(doc, &mut current, section, end, 0, &chunk)?;
                typed.edits += 1;
            }
            if rng.random_bool(RETYPE) && retype_word(doc, rng, &mut current, section)? {
                typed.edits += 1;
                typed.corrections += 1;
            }
        }
        typed.sections.push((section, current.into_iter().collect()));
    }
    Ok(typed)
}

/// Selects a whole earlier word and types over it: with a better word where one comes to mind,
/// otherwise the same word again. Returns whether an edit was made.
fn retype_word(
    doc: &mut Document,
    rng: &mut StdRng,
    current: &mut Vec<char>,
    section: Section,
) -> outpost_core::Result<bool> {
    let words = words(current);
    if words.is_empty() {
        return Ok(false);
    }
    // A word with a better alternative is the likelier one to be changed.
    let better: Vec<(usize, usize)> = words
        .iter()
        .copied()
        .filter(|&(s, e)| {
            let word: String = current[s..e].iter().collect();
            RETYPES.iter().any(|(from, _)| *from == word)
        })
        .collect();
    let pool = if !better.is_empty() && rng.random_bool(0.6) {
        &better
    } else {
        &words
    };
    let (start, end) = pool[rng.random_range(0..pool.len())];
    let word: String = current[start..end].iter().collect();
    let replacement = RETYPES
        .iter()
        .find(|(from, _)| *from == word)
        .map_or(word.as_str(), |(_, to)| *to);
    let replacement: Vec<char> = replacement.chars().collect();
    splice(doc, current, section, start, end - start, &replacement)?;
    Ok(true)
}

/// Start and end of each run of letters in `text`.
fn words(text: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.iter().enumerate() {
        match (c.is_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// One keystroke group: one edit on the document, mirrored in `current`.
fn splice(
    doc: &mut Document,
    current: &mut Vec<char>,
    section: Section,
    pos: usize,
    delete: usize,
    insert: &[char],
) -> outpost_core::Result<()> {
    let text: String = insert.iter().collect();
    doc.edit_visit(|v| v.splice(section, pos, delete, &text))?;
    current.splice(pos..pos + delete, insert.iter().copied());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use outpost_core::{Author, DeviceId, NewPerson, NewVisit, RiskTier, Setting, Store, TeamId, WorkerId};
    use rand::SeedableRng;

    /// What the mirror says was typed is what the store reads back, non-ASCII included, so edit
    /// positions count characters the way `VisitEditor::splice` does.
    #[test]
    fn typed_text_is_what_the_store_reads_back() -> Result<(), Box<dyn std::error::Error>> {
        let author = Author::new(WorkerId::new("w01")?, DeviceId::new("phone-w01")?);
        let mut person = Document::new_person(
            &author,
            &NewPerson {
                name: "Zoë Owusu".into(),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: TeamId::new("team-north")?,
                allocated_workers: vec![author.worker.clone()],
                risk: RiskTier::Low,
            },
        )?;
        let new = NewVisit {
            person: person.id().clone(),
            worker: author.worker.clone(),
            at: Utc::now(),
            setting: Setting::HomeVisit,
        };
        let (mut visit, mut review) = Document::new_visit(&author, &new)?;
        let plan = vec![
            (
                Section::WhatMatters,
                "Zoë said the café by the beck matters — très important to her.".to_string(),
            ),
            (
                Section::Goals,
                "To walk to the café again.\nTo see Siân on Sundays.".to_string(),
            ),
        ];
        let mut rng = StdRng::seed_from_u64(7);
        let typed = type_visit(&mut visit, &mut rng, &plan, 40)?;
        assert!(typed.edits >= 20, "{} edits", typed.edits);

        let dir = tempfile::tempdir()?;
        let mut store = Store::open(dir.path().join("s.sqlite3"), author)?;
        let (person_bytes, visit_bytes, review_bytes) = (person.save(), visit.save(), review.save());
        store.import_batch(&[
            (person.id().clone(), person_bytes.as_slice()),
            (visit.id().clone(), visit_bytes.as_slice()),
            (review.id().clone(), review_bytes.as_slice()),
        ])?;
        let stored = store.visit(visit.id())?;
        for (section, text) in &typed.sections {
            assert_eq!(stored.section(*section), text.as_str());
        }
        Ok(())
    }

    #[test]
    fn words_are_runs_of_letters() {
        let text: Vec<char> = "Siân said, \"yes\".".chars().collect();
        assert_eq!(words(&text), vec![(0, 4), (5, 9), (12, 15)]);
    }
}
