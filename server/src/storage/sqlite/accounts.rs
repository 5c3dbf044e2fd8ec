//! Accounts in SQLite: teams, workers, enrolment codes, devices, actors and the audit log.
