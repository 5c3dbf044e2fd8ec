//! uniffi bindings over `outpost-core`: Kotlin, Swift and Python are generated from this library
//! by `scripts/generate-bindings.sh`. A thin layer: records are mirrored with `From` impls,
//! errors mapped to one small enum, and every call goes to `outpost_core::Device`.
//!
//! Every function is synchronous (no uniffi async: Kotlin coroutines are not assumed); each
//! says whether it blocks on disk or the network, so an app keeps those off its main thread.
//! A panic inside Rust never crosses the FFI: uniffi catches it and the app receives an
//! exception (`InternalException` in Kotlin), which `force_panic_for_test` lets tests prove.

#[cfg(target_os = "android")]
mod android;
mod edits;
mod error;
mod outpost;
mod records;

pub use edits::assessment_templates;
pub use error::OutpostError;
pub use outpost::{
    AutoSyncConfig, ChangeOrigin, Enrolment, ObserverHandle, Outpost, RecordChange, RecordObserver, ServerConfig,
    SyncOutcome, SyncStatus, SyncStatusObserver,
};
pub use records::*;

uniffi::setup_scaffolding!();

/// The store schema version this library writes.
#[uniffi::export]
pub fn schema_version() -> i64 {
    outpost_core::schema::CURRENT_VERSION
}

/// Panics inside Rust. It exists so each language's tests can prove a panic reaches the app as
/// an exception and leaves the library usable; an app never calls it.
#[uniffi::export]
pub fn force_panic_for_test(message: String) {
    panic!("{message}");
}
