//! Shared harness for Outpost's cross-crate tests: the caseload generator, a fault-injecting
//! TCP proxy, the in-process world, a simulated network over it and a team served over TLS.
pub mod browser;
pub mod caseload;
pub mod forensics;
pub mod pages;
pub mod proxy;
pub mod sim;
pub mod team;
pub mod world;
