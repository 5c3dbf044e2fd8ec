//! Sync without I/O: the wire format, and the device side of the protocol, which turns the
//! store's state into a request and applies the response. `net` carries the bytes.

pub mod wire;
mod client;

pub use client::{Progress, SyncClient};
