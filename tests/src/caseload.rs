//! Realistic caseload generation (being written).
