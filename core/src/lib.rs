//! Outpost's core: field records as Automerge documents in an offline SQLite store.
//!
//! Data flows `model` (typed views of documents) -> `store` (SQLite, index, merging). Sync and
//! its transport arrive with later work; they build on `Store::export_changes` and
//! `Store::import_changes`. `Record` reads saved document bytes outside any store, for a server.

mod device;
mod document;
pub mod duplicates;
mod error;
pub mod forget;
mod ids;
mod model;
pub mod net;
mod record;
mod store;
pub mod sync;

pub use automerge::ChangeHash;
pub use device::{
    AutoSyncOptions, ChangeOrigin, Clock, Device, DeviceStatus, RecordChange, Subscription, SyncOutcome, SystemClock,
};
pub use document::Document;
pub use error::{Error, Result};
pub use ids::{Author, DeviceId, DocId, PersonId, TeamId, WorkerId};
pub use model::assessment::{
    Answer, Assessment, AssessmentEditor, CARE_ACT_OUTCOMES, NewAssessment, Outcome, Question, Template,
    TemplateSection, template,
};
pub use model::authorship::AuthoredSpan;
pub use model::fields::Field;
pub use model::header::{DocType, SCHEMA_VERSION};
pub use model::list::ItemId;
pub use model::news2::{self, ClinicalRisk, Consciousness, News2, Parameter, SpO2Scale};
pub use model::observations::{NewObservations, Observations, ObservationsEditor, RecordedVitals};
pub use model::person::{
    Consent, Contact, NewConsent, NewContact, NewPerson, NhsNumber, Person, PersonEditor, RiskTier,
};
pub use model::review::{Review, ReviewAction, ReviewState, ReviewStep};
pub use model::visit::{Action, Helped, NewAction, NewVisit, Section, Setting, Visit, VisitEditor};
pub use record::{ConcurrentEdit, Record};
pub use store::{
    ActionRow, CaseloadRow, Enrolment, Imported, KEY_LEN, LeaseTerm, Saved, SearchHit, SectionText, Selection, Server,
    Standing, StorageStats, Store, StoreKey, SyncStatus, Verified, VisitRow, parse_version, schema, version_string,
};
