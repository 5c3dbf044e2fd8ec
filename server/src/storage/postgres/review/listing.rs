//! The review listing as each write keeps it: one row per person, visit, review or record, and a
//! visit's actions, written in the transaction that stores the document.

use outpost_core::sync::{Listing, encode_heads};
use outpost_core::{ChangeHash, DocId, PersonId};

use super::super::{Sql, Tx};
use crate::error::Result;

/// Writes a document's listing; part of the transaction that stores the document.
pub(in crate::storage::postgres) async fn write_listing(
    tx: &Tx<'_>,
    doc: &DocId,
    person: &PersonId,
    heads: &[ChangeHash],
    listing: &Listing,
) -> Result<()> {
    match listing {
        Listing::Person {
            name,
            preferred_name,
            risk,
        } => {
            tx.execute(
                "INSERT INTO listed_people (person_id, name, preferred_name, risk) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (person_id) DO UPDATE SET
                     name = excluded.name, preferred_name = excluded.preferred_name, risk = excluded.risk",
                &[&person.as_str(), name, preferred_name, &risk.code()],
            )
            .await?;
        }
        Listing::Visit {
            worker,
            at,
            safeguarding,
            actions,
        } => {
            tx.execute(
                "INSERT INTO listed_visits (visit_id, person_id, worker_id, visit_at, safeguarding, heads)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (visit_id) DO UPDATE SET worker_id = excluded.worker_id,
                     visit_at = excluded.visit_at, safeguarding = excluded.safeguarding, heads = excluded.heads",
                &[
                    &doc.as_str(),
                    &person.as_str(),
                    worker,
                    &at.timestamp(),
                    safeguarding,
                    &encode_heads(heads),
                ],
            )
            .await?;
            tx.execute("DELETE FROM listed_actions WHERE visit_id = $1", &[&doc.as_str()])
                .await?;
            for action in actions {
                // A later action with the same id replaces an earlier one, as SQLite's REPLACE does.
                tx.execute(
                    "INSERT INTO listed_actions (visit_id, action_id, person_id, what, due, done, cancelled)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (visit_id, action_id) DO UPDATE SET person_id = excluded.person_id,
                         what = excluded.what, due = excluded.due, done = excluded.done,
                         cancelled = excluded.cancelled",
                    &[
                        &doc.as_str(),
                        &action.id,
                        &person.as_str(),
                        &action.what,
                        &action.due.map(|d| d.to_string()),
                        &action.done,
                        &action.cancelled,
                    ],
                )
                .await?;
            }
            if !safeguarding {
                // Cleared: a concern raised again later alerts again.
                tx.execute("DELETE FROM safeguarding_alerts WHERE visit_id = $1", &[&doc.as_str()])
                    .await?;
            }
        }
        Listing::Review {
            visit,
            state,
            submitted_at,
            approved_heads,
        } => {
            tx.execute(
                "INSERT INTO listed_reviews (visit_id, state, submitted_at, approved_heads) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (visit_id) DO UPDATE SET state = excluded.state,
                     submitted_at = excluded.submitted_at, approved_heads = excluded.approved_heads",
                &[
                    &visit.as_str(),
                    &state.code(),
                    &submitted_at.map(|t| t.timestamp()),
                    &approved_heads.as_deref().map(encode_heads),
                ],
            )
            .await?;
        }
        Listing::Assessment { at, template_id } => {
            let summary = format!("Assessment ({template_id})");
            write_record(tx, doc, person, "assessment", at.timestamp(), &summary).await?;
        }
        Listing::Observations {
            at,
            news2,
            needs_confirmation,
        } => {
            let mut summary = match news2 {
                Some(score) => format!("Observations: NEWS2 {score}"),
                None => "Observations: NEWS2 not scored (incomplete or contested)".to_string(),
            };
            if *needs_confirmation {
                summary.push_str("; values to confirm");
            }
            write_record(tx, doc, person, "observations", at.timestamp(), &summary).await?;
        }
    }
    Ok(())
}

async fn write_record(
    tx: &Tx<'_>,
    doc: &DocId,
    person: &PersonId,
    doc_type: &str,
    at: i64,
    summary: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO listed_records (doc_id, person_id, doc_type, at, summary) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (doc_id) DO UPDATE SET at = excluded.at, summary = excluded.summary",
        &[&doc.as_str(), &person.as_str(), &doc_type, &at, &summary],
    )
    .await?;
    Ok(())
}
