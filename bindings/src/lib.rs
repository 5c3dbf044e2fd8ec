//! uniffi bindings over `outpost-core` for Kotlin, Swift and Python. The bindings work fills this
//! in; until then the crate only proves the core links into a library the apps can load.

pub use outpost_core::SCHEMA_VERSION;
