//! Documents and the log in SQLite.
