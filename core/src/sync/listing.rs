//! What a server's index keeps of each document for the team leads' pages: enough to list and
//! filter records without loading them, and never free text beyond names and action titles.

use automerge::{AutoCommit, ChangeHash};
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::Result;
use crate::ids::DocId;
use crate::model::header::{self, DocType};
use crate::model::person::RiskTier;
use crate::model::review::{ReviewAction, ReviewState};
use crate::model::{assessment, observations, person, review, visit};

#[derive(Debug, Clone, PartialEq)]
pub enum Listing {
    Person {
        name: String,
        preferred_name: Option<String>,
        risk: RiskTier,
    },
    Visit {
        worker: String,
        at: DateTime<Utc>,
        safeguarding: bool,
        actions: Vec<ActionListing>,
    },
    Review {
        visit: DocId,
        state: ReviewState,
        /// When the visit was last submitted.
        submitted_at: Option<DateTime<Utc>>,
        /// The visit's heads the lead approved, while the review stands approved.
        approved_heads: Option<Vec<ChangeHash>>,
    },
    Assessment {
        at: DateTime<Utc>,
        template_id: String,
    },
    Observations {
        at: DateTime<Utc>,
        /// None when the set cannot be scored (a value missing or contested).
        news2: Option<u8>,
        needs_confirmation: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionListing {
    pub id: String,
    pub what: String,
    pub due: Option<NaiveDate>,
    pub done: bool,
    pub cancelled: bool,
}

/// A field as listed: a NUL (which nobody types, PostgreSQL cannot store in text, and a page
/// cannot show) becomes U+FFFD, so a crafted record is still listed on every server backend.
fn printable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// The listing of any kind of document, by the kind its header names. Where a field holds
/// concurrent values, the one every replica shows by default is listed.
pub fn listing(doc: &AutoCommit, id: &DocId) -> Result<Listing> {
    Ok(match header::read(doc, id)?.doc_type {
        DocType::Person => {
            let p = person::read(doc, id)?;
            Listing::Person {
                name: printable(p.name.value),
                preferred_name: p.preferred_name.map(|f| printable(f.value)),
                risk: p.risk.value,
            }
        }
        DocType::Visit => {
            let v = visit::read(doc, id)?;
            Listing::Visit {
                worker: printable(v.worker.value),
                at: v.at.value,
                safeguarding: v.safeguarding_concern,
                actions: v
                    .actions
                    .into_iter()
                    .map(|a| ActionListing {
                        id: printable(a.id.0),
                        // An action whose title this version cannot read is still listed.
                        what: a.what.map(|f| printable(f.value)).unwrap_or_default(),
                        due: a.due.map(|f| f.value),
                        done: a.done,
                        cancelled: a.cancelled,
                    })
                    .collect(),
            }
        }
        DocType::Review => {
            let r = review::read(doc, id)?;
            let latest = |action| r.history.iter().rev().find(|step| step.action == action);
            Listing::Review {
                submitted_at: latest(ReviewAction::Submit).map(|step| step.at),
                approved_heads: (r.state.value == ReviewState::Approved)
                    .then(|| latest(ReviewAction::Approve).map(|step| step.visit_heads.clone()))
                    .flatten(),
                visit: r.visit,
                state: r.state.value,
            }
        }
        DocType::Assessment => {
            let a = assessment::read(doc, id)?;
            Listing::Assessment {
                at: a.at.value,
                template_id: printable(a.template_id),
            }
        }
        DocType::Observations => {
            let o = observations::read(doc, id)?;
            Listing::Observations {
                at: o.taken_at.value,
                news2: o.news2.map(|n| n.total),
                needs_confirmation: !o.needs_confirmation.is_empty(),
            }
        }
    })
}
