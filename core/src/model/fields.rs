//! Reading and writing single fields of an Automerge document.
//!
//! Typed views are hand-written over these helpers rather than derived with autosurgeon, for three
//! reasons: an edit must touch only the keys it changes (so a field written by a newer app version
//! survives), a field written concurrently must expose every value (autosurgeon hydrates one), and
//! conversation sections must stay Automerge Text edited by splices, never replaced wholesale.

use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, transaction::Transactable};
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};

/// A field's value, and any values written concurrently by other people that nobody has chosen
/// between yet. Writing the field again (after seeing them all) resolves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<T> {
    /// The value every replica shows by default (Automerge's deterministic winner).
    pub value: T,
    /// The other values written at the same time; empty unless the field is contested.
    pub concurrent: Vec<T>,
}

impl<T> Field<T> {
    pub fn is_contested(&self) -> bool {
        !self.concurrent.is_empty()
    }
}

/// Converts between a stored scalar and a typed value. A value this version cannot read (for
/// example an enum case added by a newer app) is left in the document untouched.
pub(crate) trait Scalar: Sized {
    fn from_scalar(value: &ScalarValue) -> Option<Self>;
    fn to_scalar(&self) -> ScalarValue;
}

impl Scalar for String {
    fn from_scalar(value: &ScalarValue) -> Option<Self> {
        match value {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }
    fn to_scalar(&self) -> ScalarValue {
        ScalarValue::Str(self.as_str().into())
    }
}

impl Scalar for i64 {
    fn from_scalar(value: &ScalarValue) -> Option<Self> {
        match value {
            ScalarValue::Int(i) => Some(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }
    fn to_scalar(&self) -> ScalarValue {
        ScalarValue::Int(*self)
    }
}

impl Scalar for f64 {
    fn from_scalar(value: &ScalarValue) -> Option<Self> {
        match value {
            ScalarValue::F64(f) => Some(*f),
            ScalarValue::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
    fn to_scalar(&self) -> ScalarValue {
        ScalarValue::F64(*self)
    }
}

impl Scalar for bool {
    fn from_scalar(value: &ScalarValue) -> Option<Self> {
        match value {
            ScalarValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }
    fn to_scalar(&self) -> ScalarValue {
        ScalarValue::Boolean(*self)
    }
}

impl Scalar for NaiveDate {
    fn from_scalar(value: &ScalarValue) -> Option<Self> {
        match value {
            ScalarValue::Str(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
            _ => None,
        }
    }
    fn to_scalar(&self) -> ScalarValue {
        ScalarValue::Str(self.format("%Y-%m-%d").to_string().into())
    }
}

impl Scalar for DateTime<Utc> {
    fn from_scalar(value: &ScalarValue) -> Option<Self> {
        match value {
            ScalarValue::Timestamp(ms) => DateTime::from_timestamp_millis(*ms),
            _ => None,
        }
    }
    fn to_scalar(&self) -> ScalarValue {
        ScalarValue::Timestamp(self.timestamp_millis())
    }
}

/// Implements `Scalar` for a fieldless enum stored as a short string code.
macro_rules! scalar_enum {
    ($ty:ty { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $ty {
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }
        }
        impl $crate::model::fields::Scalar for $ty {
            fn from_scalar(value: &automerge::ScalarValue) -> Option<Self> {
                match value {
                    automerge::ScalarValue::Str(s) => Self::from_code(s),
                    _ => None,
                }
            }
            fn to_scalar(&self) -> automerge::ScalarValue {
                automerge::ScalarValue::Str(self.code().into())
            }
        }
    };
}
pub(crate) use scalar_enum;

/// Every value of `key`, winner first; values this version cannot read are skipped.
pub(crate) fn get_field<T: Scalar>(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Option<Field<T>>> {
    let winner = doc.get(obj, key)?.map(|(_, id)| id);
    let mut value = None;
    let mut concurrent = Vec::new();
    for (v, id) in doc.get_all(obj, key)? {
        let Value::Scalar(s) = v else { continue };
        let Some(parsed) = T::from_scalar(&s) else { continue };
        if Some(&id) == winner.as_ref() {
            value = Some(parsed);
        } else {
            concurrent.push(parsed);
        }
    }
    Ok(match value {
        Some(value) => Some(Field { value, concurrent }),
        // The winner is unreadable here (newer app); show what we can read rather than nothing.
        None if !concurrent.is_empty() => {
            let value = concurrent.remove(0);
            Some(Field { value, concurrent })
        }
        None => None,
    })
}

pub(crate) fn require_field<T: Scalar>(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<Field<T>> {
    get_field(doc, obj, key)?.ok_or_else(|| Error::invalid(key.to_string(), "missing from the document"))
}

pub(crate) fn put<T: Scalar>(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: &T) -> Result<()> {
    doc.put(obj, key, value.to_scalar())?;
    Ok(())
}

pub(crate) fn put_opt<T: Scalar>(doc: &mut AutoCommit, obj: &ObjId, key: &str, value: Option<&T>) -> Result<()> {
    match value {
        Some(v) => put(doc, obj, key, v),
        None => {
            if doc.get(obj, key)?.is_some() {
                doc.delete(obj, key)?;
            }
            Ok(())
        }
    }
}

/// The object stored at `key`, which must be of `kind`.
pub(crate) fn object(doc: &AutoCommit, obj: &ObjId, key: &str, kind: ObjType) -> Result<ObjId> {
    match doc.get(obj, key)? {
        Some((Value::Object(t), id)) if t == kind => Ok(id),
        _ => Err(Error::invalid(key.to_string(), format!("expected a {kind:?} object"))),
    }
}

pub(crate) fn text(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<String> {
    let id = object(doc, obj, key, ObjType::Text)?;
    Ok(doc.text(&id)?)
}

/// Replaces a text's content with the smallest splice Automerge's diff finds, so a concurrent edit
/// elsewhere in the text still merges.
pub(crate) fn update_text(doc: &mut AutoCommit, obj: &ObjId, key: &str, new_text: &str) -> Result<()> {
    let id = object(doc, obj, key, ObjType::Text)?;
    doc.update_text(&id, new_text)?;
    Ok(())
}

/// Items of a list of maps, each with its object id.
pub(crate) fn list_items(doc: &AutoCommit, list: &ObjId) -> Vec<ObjId> {
    doc.list_range(list, ..)
        .filter(|item| matches!(item.value, automerge::ValueRef::Object(ObjType::Map)))
        .map(|item| item.id())
        .collect()
}

/// Keys of a map whose value is `true` (a set kept as a map, so concurrent adds merge).
pub(crate) fn true_keys(doc: &AutoCommit, map: &ObjId) -> Vec<String> {
    doc.keys(map)
        .filter(|k| matches!(doc.get(map, k.as_str()), Ok(Some((Value::Scalar(s), _))) if s.as_ref() == &ScalarValue::Boolean(true)))
        .collect()
}
