//! Creating and editing records. Each call returns once the change is on disk (it blocks on
//! disk), and observers hear of it. A field written again after two people disagreed resolves
//! it to the new value.

use std::time::SystemTime;

use outpost_core as core;
use outpost_core::{ItemId, TeamId, WorkerId};

use crate::error::{OutpostError, Result};
use crate::outpost::{Outpost, doc_id};
use crate::records::{
    Assessment, MappedSelection, NewAction, NewAssessment, NewContact, NewPerson, NewVisit, Observations, Outcome,
    Parameter, Review, ReviewAction, ReviewState, RiskTier, Section, SectionText, Setting, Visit, Vitals, instant,
    parse_date, parse_opt_date,
};

fn worker_id(field: &str, id: &str) -> Result<WorkerId> {
    WorkerId::new(id).map_err(|e| rename(e, field))
}

/// Names the field as the app knows it.
fn rename(error: core::Error, field: &str) -> OutpostError {
    match error {
        core::Error::InvalidInput { reason, .. } => OutpostError::InvalidInput {
            field: field.to_string(),
            reason,
        },
        other => other.into(),
    }
}

/// A text offset as Kotlin and Swift hold it (a signed int), checked.
fn offset(field: &str, value: i32) -> Result<usize> {
    usize::try_from(value).map_err(|_| OutpostError::InvalidInput {
        field: field.to_string(),
        reason: format!("{value} is negative"),
    })
}

fn version(text: &str) -> Result<Vec<core::ChangeHash>> {
    Ok(core::parse_version(text)?)
}

#[uniffi::export]
impl Outpost {
    // ---- people -------------------------------------------------------------------------------

    /// Adds a person to the enrolled worker's team; returns their id.
    /// Blocks on disk.
    pub fn create_person(&self, new: NewPerson) -> Result<String> {
        let enrolment = self.enrolled()?;
        let mut allocated = new
            .allocated_workers
            .iter()
            .map(|w| worker_id("allocated worker", w))
            .collect::<Result<Vec<_>>>()?;
        if allocated.is_empty() {
            allocated.push(enrolment.author.worker.clone());
        }
        let new = core::NewPerson {
            name: new.name,
            preferred_name: new.preferred_name,
            date_of_birth: parse_opt_date("date of birth", new.date_of_birth)?,
            nhs_number: new.nhs_number,
            address: new.address,
            team: TeamId::clone(&enrolment.team),
            allocated_workers: allocated,
            risk: new.risk.into(),
        };
        Ok(self.device.write(|s| s.create_person(&new))?.to_string())
    }

    /// Blocks on disk.
    pub fn set_person_name(&self, person_id: String, name: String) -> Result<()> {
        self.edit_person(&person_id, |p| p.set_name(&name))
    }

    /// Blocks on disk.
    pub fn set_preferred_name(&self, person_id: String, name: Option<String>) -> Result<()> {
        self.edit_person(&person_id, |p| p.set_preferred_name(name.as_deref()))
    }

    /// Blocks on disk.
    pub fn set_address(&self, person_id: String, address: Option<String>) -> Result<()> {
        self.edit_person(&person_id, |p| p.set_address(address.as_deref()))
    }

    /// Blocks on disk.
    pub fn set_nhs_number(&self, person_id: String, nhs_number: Option<String>) -> Result<()> {
        self.edit_person(&person_id, |p| p.set_nhs_number(nhs_number.as_deref()))
    }

    /// Blocks on disk.
    pub fn set_risk(&self, person_id: String, risk: RiskTier) -> Result<()> {
        self.edit_person(&person_id, |p| p.set_risk(risk.into()))
    }

    /// Adds a contact to the person's support network; returns its id.
    /// Blocks on disk.
    pub fn add_contact(&self, person_id: String, contact: NewContact) -> Result<String> {
        let contact = core::NewContact {
            name: contact.name,
            relationship: contact.relationship,
            phone: contact.phone,
        };
        let mut id = None;
        self.edit_person(&person_id, |p| {
            id = Some(p.add_contact(&contact)?);
            Ok(())
        })?;
        Ok(id.map(|i| i.0).unwrap_or_default())
    }

    /// Marks a contact cancelled; it is kept, so a colleague's concurrent edit is not lost.
    /// Blocks on disk.
    pub fn cancel_contact(&self, person_id: String, contact_id: String) -> Result<()> {
        self.edit_person(&person_id, |p| p.cancel_contact(&ItemId(contact_id)))
    }

    // ---- visits -------------------------------------------------------------------------------

    /// Records a visit by the enrolled worker (its review starts as a draft); returns its id.
    /// Blocks on disk.
    pub fn create_visit(&self, new: NewVisit) -> Result<String> {
        let new = core::NewVisit {
            person: doc_id("person id", &new.person_id)?,
            worker: self.worker()?,
            at: instant(new.at),
            setting: new.setting.into(),
        };
        Ok(self.device.write(|s| s.create_visit(&new))?.to_string())
    }

    /// Blocks on disk.
    pub fn visit(&self, visit_id: String) -> Result<Visit> {
        let id = doc_id("visit id", &visit_id)?;
        Ok(self.device.read(|s| s.visit(&id))?.into())
    }

    /// A section's text and version, for a text field to show.
    /// Blocks on disk.
    pub fn section_text(&self, visit_id: String, section: Section) -> Result<SectionText> {
        let id = doc_id("visit id", &visit_id)?;
        Ok(self.device.read(|s| s.section_text(&id, section.into()))?.into())
    }

    /// The text-field helper: give the text the field showed (`old_text`, read at `version`)
    /// and what it holds now; the minimal edit is saved, merged with anything that arrived
    /// since. Returns the text the field should now show and its version.
    /// Blocks on disk.
    pub fn edit_section_text(
        &self,
        visit_id: String,
        section: Section,
        version: String,
        old_text: String,
        new_text: String,
    ) -> Result<SectionText> {
        let id = doc_id("visit id", &visit_id)?;
        let base = self::version(&version)?;
        let (_, text) = self
            .device
            .write(|s| s.edit_section_text(&id, section.into(), &base, &old_text, &new_text))?;
        Ok(text.into())
    }

    /// Maps a cursor or selection (UTF-16 offsets into the text shown at `version`) to the
    /// current text, so the caret stays by the same words when a colleague's edit syncs in.
    /// Blocks on disk.
    pub fn map_selection(
        &self,
        visit_id: String,
        section: Section,
        version: String,
        start: i32,
        end: i32,
    ) -> Result<MappedSelection> {
        let id = doc_id("visit id", &visit_id)?;
        let base = self::version(&version)?;
        let selection = core::Selection {
            start: offset("selection start", start)?,
            end: offset("selection end", end)?,
        };
        let (text, mapped) = self
            .device
            .read(|s| s.map_selection(&id, section.into(), &base, selection))?;
        Ok(MappedSelection {
            text: text.into(),
            start: i32::try_from(mapped.start).unwrap_or(i32::MAX),
            end: i32::try_from(mapped.end).unwrap_or(i32::MAX),
        })
    }

    /// Blocks on disk.
    pub fn set_visit_setting(&self, visit_id: String, setting: Setting) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.set_setting(setting.into()))
    }

    /// Blocks on disk.
    pub fn set_visit_time(&self, visit_id: String, at: SystemTime) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.set_time(instant(at)))
    }

    /// Adds an agreed action; returns its id.
    /// Blocks on disk.
    pub fn add_action(&self, visit_id: String, action: NewAction) -> Result<String> {
        let action = core::NewAction {
            what: action.what,
            who: action.who,
            due: parse_opt_date("action due", action.due)?,
        };
        let mut id = None;
        self.edit_visit(&visit_id, |v| {
            id = Some(v.add_action(&action)?);
            Ok(())
        })?;
        Ok(id.map(|i| i.0).unwrap_or_default())
    }

    /// Blocks on disk.
    pub fn set_action_done(&self, visit_id: String, action_id: String, done: bool) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.set_action_done(&ItemId(action_id), done))
    }

    /// Marks an action cancelled; it is kept and shown as such.
    /// Blocks on disk.
    pub fn cancel_action(&self, visit_id: String, action_id: String) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.cancel_action(&ItemId(action_id)))
    }

    /// How the person felt the conversation went, in their words.
    /// Blocks on disk.
    pub fn set_feedback(
        &self,
        visit_id: String,
        helped: Option<crate::records::Helped>,
        comment: String,
    ) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.set_feedback(helped.map(Into::into), &comment))
    }

    /// Blocks on disk.
    pub fn raise_safeguarding(&self, visit_id: String, reason: String) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.raise_safeguarding(&reason))
    }

    /// Blocks on disk.
    pub fn clear_safeguarding(&self, visit_id: String) -> Result<()> {
        self.edit_visit(&visit_id, |v| v.clear_safeguarding())
    }

    // ---- review -------------------------------------------------------------------------------

    /// Blocks on disk.
    pub fn review(&self, visit_id: String) -> Result<Review> {
        let id = doc_id("visit id", &visit_id)?;
        Ok(self.device.read(|s| s.review(&id))?.into())
    }

    /// Takes a review step; a worker submits (again, after a return), a lead approves or returns
    /// (a worker's device is refused with `NotAuthorised`).
    /// Blocks on disk.
    pub fn review_visit(&self, visit_id: String, action: ReviewAction, comment: Option<String>) -> Result<ReviewState> {
        let id = doc_id("visit id", &visit_id)?;
        let state = self.device.review_visit(&id, action.into(), comment.as_deref())?;
        Ok(state.into())
    }

    // ---- assessments --------------------------------------------------------------------------

    /// Starts an assessment by the enrolled worker with only the sections needed; returns its id.
    /// Blocks on disk.
    pub fn create_assessment(&self, new: NewAssessment) -> Result<String> {
        let new = core::NewAssessment {
            person: doc_id("person id", &new.person_id)?,
            assessor: self.worker()?,
            at: instant(new.at),
            template_id: new.template_id,
            template_version: new.template_version,
            sections: new.sections,
        };
        Ok(self.device.write(|s| s.create_assessment(&new))?.to_string())
    }

    /// Blocks on disk.
    pub fn assessment(&self, assessment_id: String) -> Result<Assessment> {
        let id = doc_id("assessment id", &assessment_id)?;
        Ok(self.device.read(|s| s.assessment(&id))?.into())
    }

    /// Blocks on disk.
    pub fn answer(
        &self,
        assessment_id: String,
        question: String,
        outcome: Outcome,
        note: Option<String>,
    ) -> Result<()> {
        let id = doc_id("assessment id", &assessment_id)?;
        self.device
            .write(|s| s.edit_assessment(&id, |a| a.answer(&question, outcome.into(), note.as_deref())))?;
        Ok(())
    }

    /// Blocks on disk.
    pub fn include_section(&self, assessment_id: String, section: String, included: bool) -> Result<()> {
        let id = doc_id("assessment id", &assessment_id)?;
        self.device
            .write(|s| s.edit_assessment(&id, |a| a.include_section(&section, included)))?;
        Ok(())
    }

    // ---- observations -------------------------------------------------------------------------

    /// Starts a set of observations by the enrolled worker; returns its id.
    /// Blocks on disk.
    pub fn create_observations(&self, person_id: String, taken_at: SystemTime) -> Result<String> {
        let new = core::NewObservations {
            person: doc_id("person id", &person_id)?,
            nurse: self.worker()?,
            taken_at: instant(taken_at),
        };
        Ok(self.device.write(|s| s.create_observations(&new))?.to_string())
    }

    /// Blocks on disk.
    pub fn observations(&self, observations_id: String) -> Result<Observations> {
        let id = doc_id("observations id", &observations_id)?;
        Ok(self.device.read(|s| s.observations(&id))?.into())
    }

    /// Records the vitals given (the others are left as they are), in one saved change.
    /// Blocks on disk.
    pub fn record_vitals(&self, observations_id: String, vitals: Vitals) -> Result<Observations> {
        let id = doc_id("observations id", &observations_id)?;
        let observations = self.device.write(|s| {
            s.edit_observations(&id, |o| {
                if let Some(v) = vitals.respiration_rate {
                    o.set_respiration_rate(v)?;
                }
                if let Some(v) = vitals.oxygen_saturation {
                    o.set_oxygen_saturation(v, vitals.spo2_scale.unwrap_or(crate::records::SpO2Scale::Scale1).into())?;
                }
                if let Some(v) = vitals.supplemental_oxygen {
                    o.set_supplemental_oxygen(v)?;
                }
                if let Some(v) = vitals.systolic_blood_pressure {
                    o.set_systolic_blood_pressure(v)?;
                }
                if let Some(v) = vitals.pulse {
                    o.set_pulse(v)?;
                }
                if let Some(v) = vitals.consciousness {
                    o.set_consciousness(v.into())?;
                }
                if let Some(v) = vitals.temperature {
                    o.set_temperature(v)?;
                }
                Ok(())
            })?;
            s.observations(&id)
        })?;
        Ok(observations.into())
    }

    /// Confirms an extreme but possible value the nurse has checked.
    /// Blocks on disk.
    pub fn confirm_vital(&self, observations_id: String, parameter: Parameter) -> Result<()> {
        let id = doc_id("observations id", &observations_id)?;
        self.device
            .write(|s| s.edit_observations(&id, |o| o.confirm(parameter.into())))?;
        Ok(())
    }

    /// Blocks on disk.
    pub fn set_wound_notes(&self, observations_id: String, notes: String) -> Result<()> {
        let id = doc_id("observations id", &observations_id)?;
        self.device
            .write(|s| s.edit_observations(&id, |o| o.set_wound_notes(&notes)))?;
        Ok(())
    }

    /// `due` as `YYYY-MM-DD`, or nothing to clear it.
    /// Blocks on disk.
    pub fn set_next_visit_due(&self, observations_id: String, due: Option<String>) -> Result<()> {
        let id = doc_id("observations id", &observations_id)?;
        let due = due.map(|d| parse_date("next visit due", &d)).transpose()?;
        self.device
            .write(|s| s.edit_observations(&id, |o| o.set_next_visit_due(due)))?;
        Ok(())
    }
}

impl Outpost {
    fn edit_person(
        &self,
        person_id: &str,
        f: impl FnOnce(&mut core::PersonEditor<'_>) -> core::Result<()>,
    ) -> Result<()> {
        let id = doc_id("person id", person_id)?;
        self.device.write(|s| s.edit_person(&id, f))?;
        Ok(())
    }

    fn edit_visit(&self, visit_id: &str, f: impl FnOnce(&mut core::VisitEditor<'_>) -> core::Result<()>) -> Result<()> {
        let id = doc_id("visit id", visit_id)?;
        self.device.write(|s| s.edit_visit(&id, f))?;
        Ok(())
    }
}

/// The assessment forms this version knows. Does not block.
#[uniffi::export]
pub fn assessment_templates() -> Vec<crate::records::Template> {
    vec![(&core::CARE_ACT_OUTCOMES).into()]
}
