//! Shared harness for Outpost's cross-crate tests: the caseload generator and test helpers.
pub mod caseload;
