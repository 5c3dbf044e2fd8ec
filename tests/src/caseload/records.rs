//! The rest of a visit (agreed actions, feedback, safeguarding), nursing observations and
//! proportionate Care Act assessments.

use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use outpost_core::{
    Author, CARE_ACT_OUTCOMES, Consciousness, Document, Helped, NewAction, NewAssessment, NewObservations, Outcome,
    Parameter, PersonId, SpO2Scale, WorkerId,
};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use super::phrases;
use super::prose::Profile;

/// What was added to a visit after its sections were typed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    pub actions: usize,
    /// Open actions whose due date is before the caseload's end date.
    pub overdue: usize,
    pub done: usize,
    pub cancelled: usize,
    pub safeguarding: bool,
    pub edits: usize,
}

/// Adds agreed actions (done, cancelled or still open by now), feedback and, rarely, a
/// safeguarding concern. Each call on the document is one edit.
pub fn finish_visit(
    doc: &mut Document,
    rng: &mut StdRng,
    profile: &Profile,
    worker: &WorkerId,
    visited: NaiveDate,
    today: NaiveDate,
) -> outpost_core::Result<Extras> {
    let mut extras = Extras::default();
    let count = match rng.random_range(0..100) {
        0..15 => 0,
        15..55 => 1,
        55..85 => 2,
        _ => 3,
    };
    for (what, who) in phrases::ACTIONS.choose_multiple(rng, count) {
        let who = match *who {
            "worker" => worker.as_str().to_string(),
            "person" => profile.called().to_string(),
            "family" => profile.relative(rng).to_string(),
            _ => "district nurse".to_string(),
        };
        let due = visited.checked_add_days(Days::new(rng.random_range(7..43)));
        let action = NewAction {
            what: (*what).to_string(),
            who,
            due,
        };
        let mut id = None;
        doc.edit_visit(|v| {
            id = Some(v.add_action(&action)?);
            Ok(())
        })?;
        extras.actions += 1;
        extras.edits += 1;
        let Some(id) = id else { continue };
        let past_due = due.is_some_and(|d| d < today);
        // By the end date most actions that fell due have been done; a few were dropped.
        let (p_done, p_cancelled) = if past_due { (0.7, 0.08) } else { (0.2, 0.05) };
        let roll: f64 = rng.random();
        if roll < p_done {
            doc.edit_visit(|v| v.set_action_done(&id, true))?;
            extras.done += 1;
            extras.edits += 1;
        } else if roll < p_done + p_cancelled {
            doc.edit_visit(|v| v.cancel_action(&id))?;
            extras.cancelled += 1;
            extras.edits += 1;
        } else if past_due {
            extras.overdue += 1;
        }
    }
    if rng.random_bool(0.8) {
        let helped = match rng.random_range(0..10) {
            0..6 => Helped::Yes,
            6..9 => Helped::Partly,
            _ => Helped::No,
        };
        let comment = if rng.random_bool(0.7) {
            phrases::FEEDBACK.choose(rng).copied().unwrap_or("")
        } else {
            ""
        };
        doc.edit_visit(|v| v.set_feedback(Some(helped), comment))?;
        extras.edits += 1;
    }
    if rng.random_bool(0.025) {
        let reason = phrases::SAFEGUARDING_REASONS
            .choose(rng)
            .copied()
            .unwrap_or("Concern raised");
        doc.edit_visit(|v| v.raise_safeguarding(reason))?;
        extras.safeguarding = true;
        extras.edits += 1;
    }
    Ok(extras)
}

/// One value for each NEWS2 parameter: ordinary for most people, and now and then one extreme
/// but possible value that the nurse must confirm.
pub fn observations(
    rng: &mut StdRng,
    author: &Author,
    person: &PersonId,
    taken_at: DateTime<Utc>,
    profile: &Profile,
) -> outpost_core::Result<(Document, bool)> {
    let mut doc = Document::new_observations(
        author,
        &NewObservations {
            person: person.clone(),
            nurse: author.worker.clone(),
            taken_at: taken_at + Duration::minutes(rng.random_range(5..40)),
        },
    )?;
    let copd = profile.has_condition("COPD");
    let on_oxygen = copd && rng.random_bool(0.3);
    let mut respiration = rng.random_range(12..21);
    let mut saturation = if copd {
        rng.random_range(88..95)
    } else {
        rng.random_range(94..100)
    };
    let mut systolic = rng.random_range(100..165);
    let mut pulse = rng.random_range(56..98);
    let mut temperature = f64::from(rng.random_range(358..378_i32)) / 10.0;
    let extreme = rng.random_bool(0.04);
    let mut flagged = None;
    if extreme {
        let parameter = [
            Parameter::RespirationRate,
            Parameter::OxygenSaturation,
            Parameter::SystolicBloodPressure,
            Parameter::Pulse,
            Parameter::Temperature,
        ][rng.random_range(0..5)];
        // Each is past the ordinary limit but possible, so it is stored and flagged.
        match parameter {
            Parameter::RespirationRate => respiration = 44,
            Parameter::OxygenSaturation => saturation = 78,
            Parameter::SystolicBloodPressure => systolic = 238,
            Parameter::Pulse => pulse = 31,
            _ => temperature = 31.4,
        }
        flagged = Some(parameter);
    }
    let consciousness = if rng.random_bool(0.03) {
        Consciousness::NewConfusion
    } else {
        Consciousness::Alert
    };
    // Each reading is entered on its own, as the nurse takes it.
    doc.edit_observations(|o| o.set_respiration_rate(respiration))?;
    let scale = if on_oxygen && rng.random_bool(0.5) {
        SpO2Scale::Scale2
    } else {
        SpO2Scale::Scale1
    };
    doc.edit_observations(|o| o.set_oxygen_saturation(saturation, scale))?;
    doc.edit_observations(|o| o.set_supplemental_oxygen(on_oxygen))?;
    doc.edit_observations(|o| o.set_systolic_blood_pressure(systolic))?;
    doc.edit_observations(|o| o.set_pulse(pulse))?;
    doc.edit_observations(|o| o.set_consciousness(consciousness))?;
    doc.edit_observations(|o| o.set_temperature(temperature))?;
    if let Some(parameter) = flagged.filter(|_| rng.random_bool(0.6)) {
        doc.edit_observations(|o| o.confirm(parameter))?;
    }
    if profile.has_condition("ulcer") || rng.random_bool(0.1) {
        let notes = "Wound cleaned with saline, measured 3.2 x 2.1 cm, edges healthy, moderate exudate. \
                     Redressed with a foam dressing and compression reapplied.";
        doc.edit_observations(|o| o.set_wound_notes(notes))?;
    }
    let next = taken_at
        .date_naive()
        .checked_add_days(Days::new(rng.random_range(3..15)));
    doc.edit_observations(|o| o.set_next_visit_due(next))?;
    Ok((doc, extreme))
}

/// A proportionate Care Act assessment: one to three sections of the template, each question in
/// them answered, some with a note.
pub fn assessment(
    rng: &mut StdRng,
    author: &Author,
    person: &PersonId,
    at: DateTime<Utc>,
) -> outpost_core::Result<Document> {
    let template = &CARE_ACT_OUTCOMES;
    // Caring for a child applies to few adults with care needs; the other three are common.
    let common: Vec<&str> = template
        .sections
        .iter()
        .map(|s| s.id)
        .filter(|id| *id != "caring")
        .collect();
    let n = rng.random_range(1..=common.len().min(3));
    let mut sections: Vec<String> = common.choose_multiple(rng, n).map(|s| (*s).to_string()).collect();
    if rng.random_bool(0.05) {
        sections.push("caring".to_string());
    }
    let mut doc = Document::new_assessment(
        author,
        &NewAssessment {
            person: person.clone(),
            assessor: author.worker.clone(),
            at,
            template_id: template.id.to_string(),
            template_version: template.version,
            sections: sections.clone(),
        },
    )?;
    for section in template
        .sections
        .iter()
        .filter(|s| sections.iter().any(|id| id == s.id))
    {
        for question in section.questions {
            let outcome = match rng.random_range(0..10) {
                0..4 => Outcome::Achieves,
                4..7 => Outcome::AchievesWithDifficulty,
                7..9 => Outcome::CannotAchieve,
                _ => Outcome::NotAssessed,
            };
            let note = if rng.random_bool(0.5) {
                phrases::ASSESSMENT_NOTES.choose(rng).copied()
            } else {
                None
            };
            doc.edit_assessment(|a| a.answer(question.id, outcome, note))?;
        }
    }
    Ok(doc)
}
