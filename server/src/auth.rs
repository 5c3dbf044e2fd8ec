//! Device credentials and enrolment.
