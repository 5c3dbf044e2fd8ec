//! Identifiers as newtypes, so a worker id is never passed where a document id belongs.
//! They are strings only at the edges (storage, wire, FFI).

use std::fmt;

use crate::error::{Error, Result};

/// Longest identifier we accept; ids travel in every change and every index row.
const MAX_ID_LEN: usize = 128;

fn check_id(field: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_ID_LEN} characters, got {}", s.len()),
        ));
    }
    // '/' is reserved: it separates worker and device in a change's author.
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':')))
    {
        return Err(Error::invalid(field, format!("character {bad:?} is not allowed")));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks the id's shape; the error names the field.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                check_id($field, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A document: a person, a visit, an assessment, a set of observations or a review.
    DocId,
    "document id"
);
id_type!(WorkerId, "worker id");
id_type!(DeviceId, "device id");
id_type!(TeamId, "team id");

impl DocId {
    /// A fresh random id for a document created on this device.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The review document that belongs to a visit. Derived, not random, so any replica can find it.
    pub fn review_of(visit: &DocId) -> Self {
        Self(format!("{}.review", visit.0))
    }
}

/// A person supported is the unit every document hangs from; a person's id is their document's id.
pub type PersonId = DocId;

/// Who made a change: recorded in every Automerge change as its author.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Author {
    pub worker: WorkerId,
    pub device: DeviceId,
}

impl Author {
    pub fn new(worker: WorkerId, device: DeviceId) -> Self {
        Self { worker, device }
    }

    pub(crate) fn to_automerge(&self) -> automerge::Author<'static> {
        automerge::Author::from(format!("{}/{}", self.worker, self.device).into_bytes())
    }

    /// Reads an author written by `to_automerge`; None for changes without a recognisable author.
    pub(crate) fn from_automerge(author: &automerge::Author<'_>) -> Option<Self> {
        Self::parse(std::str::from_utf8(author.as_bytes()).ok()?)
    }

    /// Reads `worker/device`, the form `to_automerge` records and author marks carry.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (worker, device) = text.split_once('/')?;
        Some(Self {
            worker: WorkerId::new(worker).ok()?,
            device: DeviceId::new(device).ok()?,
        })
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.worker, self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_long_and_separator() {
        assert!(matches!(WorkerId::new(""), Err(Error::InvalidInput { field, .. }) if field == "worker id"));
        assert!(DeviceId::new("a".repeat(129)).is_err());
        assert!(WorkerId::new("ann/1").is_err());
        assert!(WorkerId::new("ann.smith@council").is_ok());
    }

    #[test]
    fn author_round_trips_through_automerge() {
        let author = Author::new(WorkerId::new("w1").unwrap(), DeviceId::new("phone-7").unwrap());
        assert_eq!(Author::from_automerge(&author.to_automerge()), Some(author));
        assert_eq!(
            Author::from_automerge(&automerge::Author::from(b"noslash".to_vec())),
            None
        );
    }
}
