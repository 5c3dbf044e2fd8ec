//! Typed views of the documents. Each kind has a `create`, a `read` that materialises a plain
//! record, and an editor whose methods validate before they write.

pub(crate) mod assessment;
pub(crate) mod authorship;
pub(crate) mod fields;
pub(crate) mod header;
pub(crate) mod list;
pub mod news2;
pub(crate) mod observations;
pub(crate) mod person;
pub(crate) mod review;
pub(crate) mod visit;
