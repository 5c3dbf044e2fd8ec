//! The person supported: the unit every other document hangs from.

use automerge::{AutoCommit, ObjId, ObjType, ROOT, transaction::Transactable};
use chrono::{DateTime, NaiveDate, Utc};

use super::fields::{self, Field, scalar_enum};
use super::header::{self, DocType};
use super::list::{self, ItemId};
use crate::error::{Error, Result};
use crate::ids::{Author, PersonId, TeamId, WorkerId};

/// Risk tier for multidisciplinary review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskTier {
    High,
    Medium,
    Low,
}

scalar_enum!(RiskTier { High => "high", Medium => "medium", Low => "low" });

/// A 10-digit NHS number whose modulus-11 check digit is right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Accepts the digits with or without the usual spaces or hyphens ("943 476 5919").
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::invalid("nhs_number", reason);
        let digits: Vec<u32> = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| c.to_digit(10).ok_or_else(|| invalid(&format!("{c:?} is not a digit"))))
            .collect::<Result<_>>()?;
        if digits.len() != 10 {
            return Err(invalid(&format!("must have 10 digits, found {}", digits.len())));
        }
        let weighted: u32 = digits[..9].iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        let check = match 11 - weighted % 11 {
            11 => 0,
            10 => return Err(invalid("no valid check digit exists for these first nine digits")),
            c => c,
        };
        if check != digits[9] {
            return Err(invalid("check digit does not match (mistyped?)"));
        }
        Ok(Self(
            digits.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub name: String,
    pub relationship: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: ItemId,
    pub name: Option<Field<String>>,
    pub relationship: Option<Field<String>>,
    pub phone: Option<Field<String>>,
    /// Removed contacts are kept, marked cancelled, so a concurrent edit to them is never lost.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewConsent {
    /// Who the information may be shared with (a service, a professional, a relative).
    pub with_whom: String,
    pub given_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    pub id: ItemId,
    pub with_whom: Option<Field<String>>,
    pub given_on: Option<Field<NaiveDate>>,
    pub recorded_by: Option<String>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub withdrawn: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPerson {
    pub name: String,
    pub preferred_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub nhs_number: Option<String>,
    pub address: Option<String>,
    pub team: TeamId,
    pub allocated_workers: Vec<WorkerId>,
    pub risk: RiskTier,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: PersonId,
    pub schema: i64,
    pub name: Field<String>,
    pub preferred_name: Option<Field<String>>,
    pub date_of_birth: Option<Field<NaiveDate>>,
    pub nhs_number: Option<Field<String>>,
    pub address: Option<Field<String>>,
    pub team: Field<String>,
    pub allocated_workers: Vec<WorkerId>,
    pub risk: Field<RiskTier>,
    pub contacts: Vec<Contact>,
    pub consents: Vec<Consent>,
    /// Set when this record was a duplicate, merged into another: that one is the person's record.
    pub merged_into: Option<PersonId>,
    /// Values from duplicates merged into this record that differ from its own, kept.
    pub also_recorded: Vec<crate::duplicates::AlsoRecorded>,
}

impl Person {
    /// The name to greet the person by.
    pub fn display_name(&self) -> &str {
        self.preferred_name.as_ref().map_or(&self.name.value, |f| &f.value)
    }
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(())
}

pub(crate) fn create(doc: &mut AutoCommit, id: &PersonId, new: &NewPerson) -> Result<()> {
    check_name("name", &new.name)?;
    let nhs = new.nhs_number.as_deref().map(NhsNumber::parse).transpose()?;
    header::write(doc, DocType::Person, id)?;
    let mut editor = PersonEditor { doc, author: None };
    editor.set_name(&new.name)?;
    editor.set_preferred_name(new.preferred_name.as_deref())?;
    fields::put_opt(editor.doc, &ROOT, "date_of_birth", new.date_of_birth.as_ref())?;
    fields::put_opt(editor.doc, &ROOT, "nhs_number", nhs.map(|n| n.0).as_ref())?;
    fields::put_opt(editor.doc, &ROOT, "address", new.address.as_ref())?;
    fields::put(editor.doc, &ROOT, "team", &new.team.as_str().to_string())?;
    fields::put(editor.doc, &ROOT, "risk_tier", &new.risk)?;
    // Containers are made once, at creation: two replicas creating the same container
    // concurrently would each make their own, and one would hide the other.
    editor.doc.put_object(&ROOT, "allocated", ObjType::Map)?;
    editor.doc.put_object(&ROOT, "contacts", ObjType::List)?;
    editor.doc.put_object(&ROOT, "consents", ObjType::List)?;
    for worker in &new.allocated_workers {
        editor.allocate(worker)?;
    }
    Ok(())
}

pub(crate) fn read(doc: &AutoCommit, id: &PersonId) -> Result<Person> {
    let header = header::expect(doc, id, DocType::Person)?;
    let allocated = fields::object(doc, &ROOT, "allocated", ObjType::Map)?;
    let contacts = fields::object(doc, &ROOT, "contacts", ObjType::List)?;
    let consents = fields::object(doc, &ROOT, "consents", ObjType::List)?;
    Ok(Person {
        id: id.clone(),
        schema: header.schema,
        name: fields::require_field(doc, &ROOT, "name")?,
        preferred_name: fields::get_field(doc, &ROOT, "preferred_name")?,
        date_of_birth: fields::get_field(doc, &ROOT, "date_of_birth")?,
        nhs_number: fields::get_field(doc, &ROOT, "nhs_number")?,
        address: fields::get_field(doc, &ROOT, "address")?,
        team: fields::require_field(doc, &ROOT, "team")?,
        allocated_workers: fields::true_keys(doc, &allocated)
            .into_iter()
            .filter_map(|w| WorkerId::new(w).ok())
            .collect(),
        risk: fields::require_field(doc, &ROOT, "risk_tier")?,
        contacts: fields::list_items(doc, &contacts)
            .iter()
            .map(|item| read_contact(doc, item))
            .collect::<Result<_>>()?,
        consents: fields::list_items(doc, &consents)
            .iter()
            .map(|item| read_consent(doc, item))
            .collect::<Result<_>>()?,
        merged_into: crate::duplicates::merged_into(doc),
        also_recorded: crate::duplicates::also_recorded(doc),
    })
}

fn read_contact(doc: &AutoCommit, item: &ObjId) -> Result<Contact> {
    Ok(Contact {
        id: list::item_id(doc, item)?,
        name: fields::get_field(doc, item, "name")?,
        relationship: fields::get_field(doc, item, "relationship")?,
        phone: fields::get_field(doc, item, "phone")?,
        cancelled: list::is_cancelled(doc, item)?,
    })
}

fn read_consent(doc: &AutoCommit, item: &ObjId) -> Result<Consent> {
    Ok(Consent {
        id: list::item_id(doc, item)?,
        with_whom: fields::get_field(doc, item, "with_whom")?,
        given_on: fields::get_field(doc, item, "given_on")?,
        recorded_by: fields::get_field(doc, item, "recorded_by")?.map(|f: Field<String>| f.value),
        recorded_at: fields::get_field(doc, item, "recorded_at")?.map(|f| f.value),
        withdrawn: fields::get_field(doc, item, "withdrawn")?.is_some_and(|f: Field<bool>| f.value),
    })
}

/// Edits a person's record. Each method validates before it writes; the store saves the whole
/// edit durably or not at all.
#[derive(Debug)]
pub struct PersonEditor<'a> {
    pub(crate) doc: &'a mut AutoCommit,
    pub(crate) author: Option<&'a Author>,
}

impl PersonEditor<'_> {
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        check_name("name", name)?;
        fields::put(self.doc, &ROOT, "name", &name.to_string())
    }

    pub fn set_preferred_name(&mut self, name: Option<&str>) -> Result<()> {
        if let Some(name) = name {
            check_name("preferred_name", name)?;
        }
        fields::put_opt(self.doc, &ROOT, "preferred_name", name.map(str::to_string).as_ref())
    }

    pub fn set_date_of_birth(&mut self, date: Option<NaiveDate>) -> Result<()> {
        if let Some(d) = date
            && d > Utc::now().date_naive()
        {
            return Err(Error::invalid("date_of_birth", "is in the future"));
        }
        fields::put_opt(self.doc, &ROOT, "date_of_birth", date.as_ref())
    }

    /// Validates the modulus-11 check digit; `None` clears the number.
    pub fn set_nhs_number(&mut self, number: Option<&str>) -> Result<()> {
        let parsed = number.map(NhsNumber::parse).transpose()?;
        fields::put_opt(self.doc, &ROOT, "nhs_number", parsed.map(|n| n.0).as_ref())
    }

    pub fn set_address(&mut self, address: Option<&str>) -> Result<()> {
        fields::put_opt(self.doc, &ROOT, "address", address.map(str::to_string).as_ref())
    }

    pub fn set_team(&mut self, team: &TeamId) -> Result<()> {
        fields::put(self.doc, &ROOT, "team", &team.as_str().to_string())
    }

    pub fn set_risk(&mut self, risk: RiskTier) -> Result<()> {
        fields::put(self.doc, &ROOT, "risk_tier", &risk)
    }

    pub fn allocate(&mut self, worker: &WorkerId) -> Result<()> {
        let allocated = fields::object(self.doc, &ROOT, "allocated", ObjType::Map)?;
        fields::put(self.doc, &allocated, worker.as_str(), &true)
    }

    /// Kept as `false` rather than deleted, so it merges cleanly with a concurrent allocation.
    pub fn deallocate(&mut self, worker: &WorkerId) -> Result<()> {
        let allocated = fields::object(self.doc, &ROOT, "allocated", ObjType::Map)?;
        fields::put(self.doc, &allocated, worker.as_str(), &false)
    }

    pub fn add_contact(&mut self, contact: &NewContact) -> Result<ItemId> {
        check_name("contact name", &contact.name)?;
        let (id, item) = list::append(self.doc, "contacts")?;
        fields::put(self.doc, &item, "name", &contact.name)?;
        fields::put(self.doc, &item, "relationship", &contact.relationship)?;
        fields::put_opt(self.doc, &item, "phone", contact.phone.as_ref())?;
        Ok(id)
    }

    pub fn cancel_contact(&mut self, id: &ItemId) -> Result<()> {
        let item = list::find(self.doc, "contacts", id)?;
        list::cancel(self.doc, &item)
    }

    /// Records consent to share, stamped with who recorded it and when.
    pub fn record_consent(&mut self, consent: &NewConsent) -> Result<ItemId> {
        check_name("consent with_whom", &consent.with_whom)?;
        let (id, item) = list::append(self.doc, "consents")?;
        fields::put(self.doc, &item, "with_whom", &consent.with_whom)?;
        fields::put(self.doc, &item, "given_on", &consent.given_on)?;
        if let Some(author) = self.author {
            fields::put(self.doc, &item, "recorded_by", &author.worker.as_str().to_string())?;
        }
        fields::put(self.doc, &item, "recorded_at", &Utc::now())?;
        fields::put(self.doc, &item, "withdrawn", &false)?;
        Ok(id)
    }

    pub fn withdraw_consent(&mut self, id: &ItemId) -> Result<()> {
        let item = list::find(self.doc, "consents", id)?;
        fields::put(self.doc, &item, "withdrawn", &true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_checked_with_modulus_11() {
        // Published example numbers with correct check digits.
        assert_eq!(
            NhsNumber::parse("943 476 5919").map(|n| n.0).ok().as_deref(),
            Some("9434765919")
        );
        assert!(NhsNumber::parse("401-023-2137").is_ok());
        // One digit mistyped: the check digit catches it.
        assert!(
            matches!(NhsNumber::parse("9434765918"), Err(Error::InvalidInput { field, reason })
            if field == "nhs_number" && reason.contains("check digit"))
        );
        assert!(NhsNumber::parse("943476591").is_err());
        assert!(NhsNumber::parse("94347659x9").is_err());
        // 11 - (weighted sum mod 11) == 10 has no valid check digit at all.
        assert!(
            matches!(NhsNumber::parse("1000000010"), Err(Error::InvalidInput { reason, .. }) if reason.contains("no valid"))
        );
    }
}
