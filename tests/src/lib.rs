//! Shared harness for Outpost's cross-crate tests: the caseload generator and a fault-injecting
//! TCP proxy.
pub mod caseload;
pub mod proxy;
pub mod world;
