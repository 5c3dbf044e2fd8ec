//! A visit: the strengths-based conversation, what was agreed, and how the person felt it went.

use automerge::{AutoCommit, ObjId, ObjType, ROOT, transaction::Transactable};
use chrono::{DateTime, NaiveDate, Utc};

use super::fields::{self, Field, scalar_enum};
use super::header::{self, DocType};
use super::list::{self, ItemId};
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId, WorkerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    HomeVisit,
    Clinic,
    Phone,
    CommunityHub,
}

scalar_enum!(Setting {
    HomeVisit => "home_visit",
    Clinic => "clinic",
    Phone => "phone",
    CommunityHub => "community_hub",
});

/// The conversation's sections, each an Automerge Text so concurrent typing merges by character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// What matters to the person, in their own words.
    WhatMatters,
    /// Strengths and what they can do.
    Strengths,
    SupportNetwork,
    /// What they want to achieve.
    Goals,
    RisksAndConcerns,
    /// Community connections suggested.
    CommunityConnections,
}

scalar_enum!(Section {
    WhatMatters => "what_matters",
    Strengths => "strengths",
    SupportNetwork => "support_network",
    Goals => "goals",
    RisksAndConcerns => "risks_and_concerns",
    CommunityConnections => "community_connections",
});

impl Section {
    pub const ALL: [Section; 6] = [
        Section::WhatMatters,
        Section::Strengths,
        Section::SupportNetwork,
        Section::Goals,
        Section::RisksAndConcerns,
        Section::CommunityConnections,
    ];
}

/// Did the conversation help, in the person's own view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Helped {
    Yes,
    Partly,
    No,
}

scalar_enum!(Helped { Yes => "yes", Partly => "partly", No => "no" });

#[derive(Debug, Clone, PartialEq)]
pub struct NewVisit {
    pub person: PersonId,
    pub worker: WorkerId,
    pub at: DateTime<Utc>,
    pub setting: Setting,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    pub what: String,
    pub who: String,
    pub due: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub id: ItemId,
    pub what: Option<Field<String>>,
    pub who: Option<Field<String>>,
    pub due: Option<Field<NaiveDate>>,
    pub done: bool,
    /// Cancelled actions are kept and shown as such; they are never deleted.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub id: DocId,
    pub schema: i64,
    pub person: PersonId,
    pub worker: Field<String>,
    pub at: Field<DateTime<Utc>>,
    pub setting: Field<Setting>,
    /// Text of each section, in `Section::ALL` order.
    pub sections: Vec<(Section, String)>,
    pub actions: Vec<Action>,
    pub helped: Option<Field<Helped>>,
    pub feedback: String,
    pub safeguarding_concern: bool,
    pub safeguarding_reason: Option<Field<String>>,
}

impl Visit {
    pub fn section(&self, section: Section) -> &str {
        self.sections
            .iter()
            .find(|(s, _)| *s == section)
            .map_or("", |(_, text)| text.as_str())
    }
}

pub(crate) fn create(doc: &mut AutoCommit, new: &NewVisit) -> Result<()> {
    header::write(doc, DocType::Visit, &new.person)?;
    fields::put(doc, &ROOT, "worker", &new.worker.as_str().to_string())?;
    fields::put(doc, &ROOT, "at", &new.at)?;
    fields::put(doc, &ROOT, "setting", &new.setting)?;
    // Every container is made here, once: see `person::create` for why.
    let sections = doc.put_object(&ROOT, "sections", ObjType::Map)?;
    for section in Section::ALL {
        doc.put_object(&sections, section.code(), ObjType::Text)?;
    }
    doc.put_object(&ROOT, "actions", ObjType::List)?;
    let feedback = doc.put_object(&ROOT, "feedback", ObjType::Map)?;
    doc.put_object(&feedback, "comment", ObjType::Text)?;
    let safeguarding = doc.put_object(&ROOT, "safeguarding", ObjType::Map)?;
    fields::put(doc, &safeguarding, "concern", &false)?;
    Ok(())
}

pub(crate) fn read(doc: &AutoCommit, id: &DocId) -> Result<Visit> {
    let header = header::expect(doc, id, DocType::Visit)?;
    let sections_obj = fields::object(doc, &ROOT, "sections", ObjType::Map)?;
    let sections = Section::ALL
        .iter()
        .map(|s| Ok((*s, fields::text(doc, &sections_obj, s.code())?)))
        .collect::<Result<_>>()?;
    let actions_obj = fields::object(doc, &ROOT, "actions", ObjType::List)?;
    let feedback = fields::object(doc, &ROOT, "feedback", ObjType::Map)?;
    let safeguarding = fields::object(doc, &ROOT, "safeguarding", ObjType::Map)?;
    Ok(Visit {
        id: id.clone(),
        schema: header.schema,
        person: header.person,
        worker: fields::require_field(doc, &ROOT, "worker")?,
        at: fields::require_field(doc, &ROOT, "at")?,
        setting: fields::require_field(doc, &ROOT, "setting")?,
        sections,
        actions: fields::list_items(doc, &actions_obj)
            .iter()
            .map(|item| read_action(doc, item))
            .collect::<Result<_>>()?,
        helped: fields::get_field(doc, &feedback, "helped")?,
        feedback: fields::text(doc, &feedback, "comment")?,
        // A concern raised by anyone stands until it is cleared after seeing it.
        safeguarding_concern: fields::get_field::<bool>(doc, &safeguarding, "concern")?
            .is_some_and(|f| f.value || f.concurrent.contains(&true)),
        safeguarding_reason: fields::get_field(doc, &safeguarding, "reason")?,
    })
}

fn read_action(doc: &AutoCommit, item: &ObjId) -> Result<Action> {
    Ok(Action {
        id: list::item_id(doc, item)?,
        what: fields::get_field(doc, item, "what")?,
        who: fields::get_field(doc, item, "who")?,
        due: fields::get_field(doc, item, "due")?,
        done: fields::get_field::<bool>(doc, item, "done")?.is_some_and(|f| f.value),
        cancelled: list::is_cancelled(doc, item)?,
    })
}

/// The object id of a section's text, for splicing and authorship.
pub(crate) fn section_text(doc: &AutoCommit, section: Section) -> Result<ObjId> {
    let sections = fields::object(doc, &ROOT, "sections", ObjType::Map)?;
    fields::object(doc, &sections, section.code(), ObjType::Text)
}

#[derive(Debug)]
pub struct VisitEditor<'a> {
    pub(crate) doc: &'a mut AutoCommit,
}

impl VisitEditor<'_> {
    /// Inserts and deletes at a position counted in Unicode scalar values, exactly as typed.
    /// Capturing the keystroke (rather than diffing whole texts) merges best with a colleague's
    /// concurrent typing.
    pub fn splice(&mut self, section: Section, pos: usize, delete: usize, insert: &str) -> Result<()> {
        let text = section_text(self.doc, section)?;
        let len = automerge::ReadDoc::length(self.doc, &text);
        if pos > len || pos + delete > len {
            return Err(Error::invalid(
                section.code(),
                format!("edit at {pos}..{} is outside the text (length {len})", pos + delete),
            ));
        }
        let delete = isize::try_from(delete).map_err(|_| Error::invalid(section.code(), "delete too long"))?;
        self.doc.splice_text(&text, pos, delete, insert)?;
        Ok(())
    }

    /// Replaces a section's text with the minimal edit that turns the old text into `new_text`.
    pub fn set_section(&mut self, section: Section, new_text: &str) -> Result<()> {
        let sections = fields::object(self.doc, &ROOT, "sections", ObjType::Map)?;
        fields::update_text(self.doc, &sections, section.code(), new_text)
    }

    pub fn set_setting(&mut self, setting: Setting) -> Result<()> {
        fields::put(self.doc, &ROOT, "setting", &setting)
    }

    pub fn set_time(&mut self, at: DateTime<Utc>) -> Result<()> {
        fields::put(self.doc, &ROOT, "at", &at)
    }

    pub fn add_action(&mut self, action: &NewAction) -> Result<ItemId> {
        if action.what.trim().is_empty() {
            return Err(Error::invalid("action what", "must not be empty"));
        }
        let (id, item) = list::append(self.doc, "actions")?;
        fields::put(self.doc, &item, "what", &action.what)?;
        fields::put(self.doc, &item, "who", &action.who)?;
        fields::put_opt(self.doc, &item, "due", action.due.as_ref())?;
        fields::put(self.doc, &item, "done", &false)?;
        Ok(id)
    }

    pub fn edit_action(
        &mut self,
        id: &ItemId,
        what: Option<&str>,
        who: Option<&str>,
        due: Option<Option<NaiveDate>>,
    ) -> Result<()> {
        let item = list::find(self.doc, "actions", id)?;
        if let Some(what) = what {
            if what.trim().is_empty() {
                return Err(Error::invalid("action what", "must not be empty"));
            }
            fields::put(self.doc, &item, "what", &what.to_string())?;
        }
        if let Some(who) = who {
            fields::put(self.doc, &item, "who", &who.to_string())?;
        }
        if let Some(due) = due {
            fields::put_opt(self.doc, &item, "due", due.as_ref())?;
        }
        Ok(())
    }

    pub fn set_action_done(&mut self, id: &ItemId, done: bool) -> Result<()> {
        let item = list::find(self.doc, "actions", id)?;
        fields::put(self.doc, &item, "done", &done)
    }

    /// Cancels rather than deletes, so a colleague's concurrent edit to the action survives.
    pub fn cancel_action(&mut self, id: &ItemId) -> Result<()> {
        let item = list::find(self.doc, "actions", id)?;
        list::cancel(self.doc, &item)
    }

    pub fn set_feedback(&mut self, helped: Option<Helped>, comment: &str) -> Result<()> {
        let feedback = fields::object(self.doc, &ROOT, "feedback", ObjType::Map)?;
        fields::put_opt(self.doc, &feedback, "helped", helped.as_ref())?;
        fields::update_text(self.doc, &feedback, "comment", comment)
    }

    /// Raises a safeguarding concern; a reason is required so the lead knows why.
    pub fn raise_safeguarding(&mut self, reason: &str) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(Error::invalid("safeguarding reason", "a concern needs a reason"));
        }
        let safeguarding = fields::object(self.doc, &ROOT, "safeguarding", ObjType::Map)?;
        fields::put(self.doc, &safeguarding, "concern", &true)?;
        fields::put(self.doc, &safeguarding, "reason", &reason.to_string())
    }

    pub fn clear_safeguarding(&mut self) -> Result<()> {
        let safeguarding = fields::object(self.doc, &ROOT, "safeguarding", ObjType::Map)?;
        fields::put(self.doc, &safeguarding, "concern", &false)
    }
}
