//! The core's records mirrored for the FFI: identifiers as strings, instants as timestamps, dates
//! as ISO `YYYY-MM-DD` strings, and each field that can hold concurrent values as a value plus
//! the `concurrent` values written at the same time (empty unless two people disagreed).

use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};
use outpost_core as core;

use crate::error::{OutpostError, Result};

/// Mirrors a core enum whose variants have the same names, with `From` both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
        pub enum $name { $($variant),+ }

        impl From<core::$name> for $name {
            fn from(value: core::$name) -> Self {
                match value { $(core::$name::$variant => Self::$variant),+ }
            }
        }

        impl From<$name> for core::$name {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => Self::$variant),+ }
            }
        }
    };
}

mirror_enum!(RiskTier { High, Medium, Low });
mirror_enum!(Setting {
    HomeVisit,
    Clinic,
    Phone,
    CommunityHub
});
mirror_enum!(
    /// A visit's conversation sections, each merged character by character.
    Section { WhatMatters, Strengths, SupportNetwork, Goals, RisksAndConcerns, CommunityConnections }
);
mirror_enum!(Helped { Yes, Partly, No });
mirror_enum!(Outcome {
    Achieves,
    AchievesWithDifficulty,
    CannotAchieve,
    NotAssessed
});
mirror_enum!(ReviewState {
    Draft,
    Submitted,
    Approved,
    Returned
});
mirror_enum!(ReviewAction {
    Submit,
    Approve,
    Return
});
mirror_enum!(Consciousness {
    Alert,
    NewConfusion,
    Voice,
    Pain,
    Unresponsive
});
mirror_enum!(SpO2Scale { Scale1, Scale2 });
mirror_enum!(ClinicalRisk {
    Low,
    LowMedium,
    Medium,
    High
});
mirror_enum!(Parameter {
    RespirationRate,
    OxygenSaturation,
    SupplementalOxygen,
    SystolicBloodPressure,
    Pulse,
    Consciousness,
    Temperature,
});

/// Mirrors `core::Field<T>` for one value type.
macro_rules! field_record {
    ($(#[$doc:meta])* $name:ident($ty:ty) from $core:ty, $convert:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, uniffi::Record)]
        pub struct $name {
            /// What every device shows by default.
            pub value: $ty,
            /// Values written at the same time by others; writing the field again resolves it.
            pub concurrent: Vec<$ty>,
        }

        impl From<core::Field<$core>> for $name {
            fn from(field: core::Field<$core>) -> Self {
                let convert = $convert;
                Self {
                    value: convert(field.value),
                    concurrent: field.concurrent.into_iter().map(convert).collect(),
                }
            }
        }
    };
}

field_record!(TextValue(String) from String, |v: String| v);
field_record!(TimeValue(SystemTime) from DateTime<Utc>, SystemTime::from);
field_record!(
    /// A date as `YYYY-MM-DD`.
    DateValue(String) from NaiveDate, |d: NaiveDate| d.to_string()
);
field_record!(IntValue(i64) from i64, |v: i64| v);
field_record!(BoolValue(bool) from bool, |v: bool| v);
field_record!(FloatValue(f64) from f64, |v: f64| v);
field_record!(RiskValue(RiskTier) from core::RiskTier, RiskTier::from);
field_record!(SettingValue(Setting) from core::Setting, Setting::from);
field_record!(HelpedValue(Helped) from core::Helped, Helped::from);
field_record!(OutcomeValue(Outcome) from core::Outcome, Outcome::from);
field_record!(ReviewStateValue(ReviewState) from core::ReviewState, ReviewState::from);

pub(crate) fn each<A, B: From<A>>(items: Vec<A>) -> Vec<B> {
    items.into_iter().map(B::from).collect()
}

fn opt<A, B: From<A>>(item: Option<A>) -> Option<B> {
    item.map(B::from)
}

/// Reads an ISO date the app passed; the error names the field.
pub(crate) fn parse_date(field: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| OutpostError::InvalidInput {
        field: field.to_string(),
        reason: format!("{text:?} is not a date as YYYY-MM-DD: {e}"),
    })
}

pub(crate) fn parse_opt_date(field: &str, text: Option<String>) -> Result<Option<NaiveDate>> {
    text.map(|t| parse_date(field, &t)).transpose()
}

pub(crate) fn instant(at: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(at)
}

// ---- people -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewPerson {
    pub name: String,
    #[uniffi(default)]
    pub preferred_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[uniffi(default)]
    pub date_of_birth: Option<String>,
    #[uniffi(default)]
    pub nhs_number: Option<String>,
    #[uniffi(default)]
    pub address: Option<String>,
    /// Workers the person is allocated to; empty means the enrolled worker.
    #[uniffi(default)]
    pub allocated_workers: Vec<String>,
    pub risk: RiskTier,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Contact {
    pub id: String,
    pub name: Option<TextValue>,
    pub relationship: Option<TextValue>,
    pub phone: Option<TextValue>,
    /// Removed contacts are kept, marked cancelled.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewContact {
    pub name: String,
    pub relationship: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Consent {
    pub id: String,
    pub with_whom: Option<TextValue>,
    pub given_on: Option<DateValue>,
    pub recorded_by: Option<String>,
    pub recorded_at: Option<SystemTime>,
    pub withdrawn: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Person {
    pub id: String,
    pub name: TextValue,
    pub preferred_name: Option<TextValue>,
    pub date_of_birth: Option<DateValue>,
    pub nhs_number: Option<TextValue>,
    pub address: Option<TextValue>,
    pub team: TextValue,
    pub allocated_workers: Vec<String>,
    pub risk: RiskValue,
    pub contacts: Vec<Contact>,
    pub consents: Vec<Consent>,
}

impl From<core::Person> for Person {
    fn from(p: core::Person) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.into(),
            preferred_name: opt(p.preferred_name),
            date_of_birth: opt(p.date_of_birth),
            nhs_number: opt(p.nhs_number),
            address: opt(p.address),
            team: p.team.into(),
            allocated_workers: p.allocated_workers.iter().map(ToString::to_string).collect(),
            risk: p.risk.into(),
            contacts: p
                .contacts
                .into_iter()
                .map(|c| Contact {
                    id: c.id.0,
                    name: opt(c.name),
                    relationship: opt(c.relationship),
                    phone: opt(c.phone),
                    cancelled: c.cancelled,
                })
                .collect(),
            consents: p
                .consents
                .into_iter()
                .map(|c| Consent {
                    id: c.id.0,
                    with_whom: opt(c.with_whom),
                    given_on: opt(c.given_on),
                    recorded_by: c.recorded_by,
                    recorded_at: c.recorded_at.map(SystemTime::from),
                    withdrawn: c.withdrawn,
                })
                .collect(),
        }
    }
}

// ---- visits -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewVisit {
    pub person_id: String,
    pub at: SystemTime,
    pub setting: Setting,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewAction {
    pub what: String,
    pub who: String,
    /// `YYYY-MM-DD`.
    #[uniffi(default)]
    pub due: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Action {
    pub id: String,
    pub what: Option<TextValue>,
    pub who: Option<TextValue>,
    pub due: Option<DateValue>,
    pub done: bool,
    /// Cancelled actions are kept and shown as such.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SectionEntry {
    pub section: Section,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Visit {
    pub id: String,
    pub person_id: String,
    pub worker: TextValue,
    pub at: TimeValue,
    pub setting: SettingValue,
    /// Every section, in the order a form shows them.
    pub sections: Vec<SectionEntry>,
    pub actions: Vec<Action>,
    pub helped: Option<HelpedValue>,
    pub feedback: String,
    pub safeguarding_concern: bool,
    pub safeguarding_reason: Option<TextValue>,
}

impl From<core::Visit> for Visit {
    fn from(v: core::Visit) -> Self {
        Self {
            id: v.id.to_string(),
            person_id: v.person.to_string(),
            worker: v.worker.into(),
            at: v.at.into(),
            setting: v.setting.into(),
            sections: v
                .sections
                .into_iter()
                .map(|(section, text)| SectionEntry {
                    section: section.into(),
                    text,
                })
                .collect(),
            actions: v
                .actions
                .into_iter()
                .map(|a| Action {
                    id: a.id.0,
                    what: opt(a.what),
                    who: opt(a.who),
                    due: opt(a.due),
                    done: a.done,
                    cancelled: a.cancelled,
                })
                .collect(),
            helped: opt(v.helped),
            feedback: v.feedback,
            safeguarding_concern: v.safeguarding_concern,
            safeguarding_reason: opt(v.safeguarding_reason),
        }
    }
}

/// A section's text as a text field shows it, and the version it was read at. Keep both: the
/// text-field calls take the version back.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SectionText {
    pub text: String,
    pub version: String,
}

impl From<core::SectionText> for SectionText {
    fn from(t: core::SectionText) -> Self {
        Self {
            text: t.text,
            version: core::version_string(&t.version),
        }
    }
}

/// A cursor (start == end) or selection mapped to the current text, in UTF-16 code units.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MappedSelection {
    pub text: SectionText,
    pub start: i32,
    pub end: i32,
}

// ---- review -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReviewStep {
    pub action: ReviewAction,
    /// Who took the step, when the change recorded it.
    pub by_worker: Option<String>,
    pub at: SystemTime,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Review {
    pub visit_id: String,
    pub state: ReviewStateValue,
    /// Oldest first; the latest "returned" step carries the team lead's comment.
    pub history: Vec<ReviewStep>,
}

impl From<core::Review> for Review {
    fn from(r: core::Review) -> Self {
        Self {
            visit_id: r.visit.to_string(),
            state: r.state.into(),
            history: r
                .history
                .into_iter()
                .map(|s| ReviewStep {
                    action: s.action.into(),
                    by_worker: s.by.map(|a| a.worker.to_string()),
                    at: s.at.into(),
                    comment: s.comment,
                })
                .collect(),
        }
    }
}

// ---- assessments --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewAssessment {
    pub person_id: String,
    pub at: SystemTime,
    pub template_id: String,
    pub template_version: i64,
    /// Section ids to include: a proportionate assessment asks only these.
    pub sections: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Answer {
    pub question: String,
    pub outcome: OutcomeValue,
    pub note: Option<TextValue>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Assessment {
    pub id: String,
    pub person_id: String,
    pub assessor: TextValue,
    pub at: TimeValue,
    pub template_id: String,
    pub template_version: i64,
    pub sections: Vec<String>,
    pub answers: Vec<Answer>,
}

impl From<core::Assessment> for Assessment {
    fn from(a: core::Assessment) -> Self {
        Self {
            id: a.id.to_string(),
            person_id: a.person.to_string(),
            assessor: a.assessor.into(),
            at: a.at.into(),
            template_id: a.template_id,
            template_version: a.template_version,
            sections: a.sections,
            answers: a
                .answers
                .into_iter()
                .map(|x| Answer {
                    question: x.question,
                    outcome: x.outcome.into(),
                    note: opt(x.note),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Question {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TemplateSection {
    pub id: String,
    pub title: String,
    pub questions: Vec<Question>,
}

/// An assessment form: what a UI lays out.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Template {
    pub id: String,
    pub version: i64,
    pub title: String,
    pub sections: Vec<TemplateSection>,
}

impl From<&core::Template> for Template {
    fn from(t: &core::Template) -> Self {
        Self {
            id: t.id.into(),
            version: t.version,
            title: t.title.into(),
            sections: t
                .sections
                .iter()
                .map(|s| TemplateSection {
                    id: s.id.into(),
                    title: s.title.into(),
                    questions: s
                        .questions
                        .iter()
                        .map(|q| Question {
                            id: q.id.into(),
                            text: q.text.into(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

// ---- observations -------------------------------------------------------------------------

/// Values to record; only those given are written.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Vitals {
    #[uniffi(default)]
    pub respiration_rate: Option<i64>,
    #[uniffi(default)]
    pub oxygen_saturation: Option<i64>,
    #[uniffi(default)]
    pub spo2_scale: Option<SpO2Scale>,
    #[uniffi(default)]
    pub supplemental_oxygen: Option<bool>,
    #[uniffi(default)]
    pub systolic_blood_pressure: Option<i64>,
    #[uniffi(default)]
    pub pulse: Option<i64>,
    #[uniffi(default)]
    pub consciousness: Option<Consciousness>,
    #[uniffi(default)]
    pub temperature: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct News2 {
    pub total: u8,
    pub risk: ClinicalRisk,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Observations {
    pub id: String,
    pub person_id: String,
    pub nurse: TextValue,
    pub taken_at: TimeValue,
    pub respiration_rate: Option<IntValue>,
    pub oxygen_saturation: Option<IntValue>,
    pub supplemental_oxygen: Option<BoolValue>,
    pub systolic_blood_pressure: Option<IntValue>,
    pub pulse: Option<IntValue>,
    /// ACVPU as stored (`alert`, `new_confusion`, ...).
    pub consciousness: Option<TextValue>,
    pub temperature: Option<FloatValue>,
    /// Only when all seven parameters are present and uncontested.
    pub news2: Option<News2>,
    /// Extreme but possible values the nurse has not confirmed yet.
    pub needs_confirmation: Vec<Parameter>,
    pub wound_notes: String,
    pub next_visit_due: Option<DateValue>,
}

impl From<core::Observations> for Observations {
    fn from(o: core::Observations) -> Self {
        let r = o.recorded;
        Self {
            id: o.id.to_string(),
            person_id: o.person.to_string(),
            nurse: o.nurse.into(),
            taken_at: o.taken_at.into(),
            respiration_rate: opt(r.respiration_rate),
            oxygen_saturation: opt(r.oxygen_saturation),
            supplemental_oxygen: opt(r.supplemental_oxygen),
            systolic_blood_pressure: opt(r.systolic_blood_pressure),
            pulse: opt(r.pulse),
            consciousness: opt(r.consciousness),
            temperature: opt(r.temperature),
            news2: o.news2.map(|n| News2 {
                total: n.total,
                risk: n.risk.into(),
            }),
            needs_confirmation: each(o.needs_confirmation),
            wound_notes: o.wound_notes,
            next_visit_due: opt(o.next_visit_due),
        }
    }
}

// ---- queries ------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CaseloadEntry {
    pub person_id: String,
    pub name: String,
    pub preferred_name: Option<String>,
    pub risk: Option<RiskTier>,
    pub last_visit: Option<SystemTime>,
    pub open_actions: i64,
}

impl From<core::CaseloadRow> for CaseloadEntry {
    fn from(r: core::CaseloadRow) -> Self {
        Self {
            person_id: r.person.to_string(),
            name: r.name,
            preferred_name: r.preferred_name,
            risk: opt(r.risk),
            last_visit: r.last_visit.map(SystemTime::from),
            open_actions: r.open_actions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VisitSummary {
    pub visit_id: String,
    pub person_id: String,
    pub worker: String,
    pub at: Option<SystemTime>,
    pub setting: Option<Setting>,
    pub safeguarding: bool,
    pub review_state: Option<ReviewState>,
}

impl From<core::VisitRow> for VisitSummary {
    fn from(r: core::VisitRow) -> Self {
        Self {
            visit_id: r.visit.to_string(),
            person_id: r.person.to_string(),
            worker: r.worker,
            at: r.at.map(SystemTime::from),
            setting: opt(r.setting),
            safeguarding: r.safeguarding,
            review_state: opt(r.review_state),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SearchHit {
    pub visit_id: String,
    pub person_id: String,
    /// The matching passage, the match wrapped in `[` `]`.
    pub snippet: String,
}

impl From<core::SearchHit> for SearchHit {
    fn from(h: core::SearchHit) -> Self {
        Self {
            visit_id: h.visit.to_string(),
            person_id: h.person.to_string(),
            snippet: h.snippet,
        }
    }
}
