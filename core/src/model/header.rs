//! What every document carries at its root: its kind, the schema version that wrote it, and the
//! person it belongs to.

use automerge::{AutoCommit, ROOT};

use super::fields::{self, scalar_enum};
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId};

/// The schema version this build writes. A document with a higher version is still read and
/// edited: fields this build does not know are left untouched.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocType {
    Person,
    Visit,
    Assessment,
    Observations,
    Review,
}

scalar_enum!(DocType {
    Person => "person",
    Visit => "visit",
    Assessment => "assessment",
    Observations => "observations",
    Review => "review",
});

#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub doc_type: DocType,
    pub schema: i64,
    pub person: PersonId,
}

pub(crate) fn write(doc: &mut AutoCommit, doc_type: DocType, person: &PersonId) -> Result<()> {
    fields::put(doc, &ROOT, "type", &doc_type)?;
    fields::put(doc, &ROOT, "schema", &SCHEMA_VERSION)?;
    fields::put(doc, &ROOT, "person", &person.as_str().to_string())?;
    Ok(())
}

/// Reads the header; a document without a readable one is reported as corrupt.
pub(crate) fn read(doc: &AutoCommit, id: &DocId) -> Result<Header> {
    let corrupt = |reason: &str| Error::CorruptDocument {
        id: id.clone(),
        reason: reason.to_string(),
    };
    let type_code: String = fields::get_field(doc, &ROOT, "type")?
        .ok_or_else(|| corrupt("no document type"))?
        .value;
    let doc_type =
        DocType::from_code(&type_code).ok_or_else(|| corrupt(&format!("unknown document type {type_code:?}")))?;
    let schema = fields::get_field::<i64>(doc, &ROOT, "schema")?
        .ok_or_else(|| corrupt("no schema version"))?
        .value;
    let person: String = fields::get_field(doc, &ROOT, "person")?
        .ok_or_else(|| corrupt("does not name its person"))?
        .value;
    let person = DocId::new(person).map_err(|_| corrupt("person id is malformed"))?;
    Ok(Header {
        doc_type,
        schema,
        person,
    })
}

/// Checks a document is of the kind the caller expects.
pub(crate) fn expect(doc: &AutoCommit, id: &DocId, expected: DocType) -> Result<Header> {
    let header = read(doc, id)?;
    if header.doc_type != expected {
        return Err(Error::WrongType {
            id: id.clone(),
            expected: expected.code(),
            actual: header.doc_type.code().to_string(),
        });
    }
    Ok(header)
}
