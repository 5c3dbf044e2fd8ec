//! The query index: rows derived from each document, rewritten in the same transaction as the
//! document's changes, so queries never load documents.

use automerge::AutoCommit;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::Result;
use crate::ids::DocId;
use crate::model::header::{self, DocType};
use crate::model::{assessment, observations, person, review, visit};

const DERIVED_TABLES: [&str; 8] = [
    "doc_index",
    "people",
    "allocations",
    "visits",
    "reviews",
    "actions",
    "assessments",
    "observations",
];

pub(crate) fn clear(tx: &Transaction<'_>) -> Result<()> {
    for table in DERIVED_TABLES {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    tx.execute("DELETE FROM visit_text", [])?;
    Ok(())
}

/// Replaces the index rows for one document with rows read from its current state.
pub(crate) fn write(tx: &Transaction<'_>, id: &DocId, doc: &AutoCommit) -> Result<()> {
    let header = header::read(doc, id)?;
    let row_id: i64 = tx.query_row(
        "INSERT INTO doc_index (doc_id, doc_type, person_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id) DO UPDATE SET doc_type = excluded.doc_type, person_id = excluded.person_id
         RETURNING id",
        params![id.as_str(), header.doc_type.code(), header.person.as_str()],
        |row| row.get(0),
    )?;
    match header.doc_type {
        DocType::Person => {
            let p = person::read(doc, id)?;
            if p.merged_into.is_some() {
                // Merged into another record: kept, but listed under that one only.
                tx.execute("DELETE FROM people WHERE person_id = ?1", [p.id.as_str()])?;
                tx.execute("DELETE FROM allocations WHERE person_id = ?1", [p.id.as_str()])?;
                return Ok(());
            }
            write_person(tx, &p)
        }
        DocType::Visit => write_visit(tx, row_id, &visit::read(doc, id)?),
        DocType::Review => write_review(tx, &review::read(doc, id)?),
        DocType::Assessment => {
            let a = assessment::read(doc, id)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO assessments (assessment_id, person_id, assessed_at, template_id)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                id.as_str(),
                a.person.as_str(),
                a.at.value.timestamp_millis(),
                a.template_id
            ])?;
            Ok(())
        }
        DocType::Observations => {
            let o = observations::read(doc, id)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO observations
                 (observations_id, person_id, taken_at, news2, risk, needs_confirmation, next_visit_due)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                id.as_str(),
                o.person.as_str(),
                o.taken_at.value.timestamp_millis(),
                o.news2.as_ref().map(|n| n.total),
                o.news2.as_ref().map(|n| n.risk.name()),
                !o.needs_confirmation.is_empty(),
                o.next_visit_due.map(|d| d.value.format("%Y-%m-%d").to_string()),
            ])?;
            Ok(())
        }
    }
}

fn write_person(tx: &Transaction<'_>, p: &person::Person) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO people
         (person_id, name, preferred_name, date_of_birth, nhs_number, team, risk_tier)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        p.id.as_str(),
        p.name.value,
        p.preferred_name.as_ref().map(|f| &f.value),
        p.date_of_birth.as_ref().map(|f| f.value.format("%Y-%m-%d").to_string()),
        p.nhs_number.as_ref().map(|f| &f.value),
        p.team.value,
        p.risk.value.code(),
    ])?;
    tx.prepare_cached("DELETE FROM allocations WHERE person_id = ?1")?
        .execute([p.id.as_str()])?;
    let mut allocate = tx.prepare_cached("INSERT INTO allocations (worker_id, person_id) VALUES (?1, ?2)")?;
    for worker in &p.allocated_workers {
        allocate.execute(params![worker.as_str(), p.id.as_str()])?;
    }
    Ok(())
}

fn write_visit(tx: &Transaction<'_>, row_id: i64, v: &visit::Visit) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO visits (visit_id, person_id, worker_id, visit_at, setting, safeguarding)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        v.id.as_str(),
        v.person.as_str(),
        v.worker.value,
        v.at.value.timestamp_millis(),
        v.setting.value.code(),
        v.safeguarding_concern,
    ])?;
    tx.prepare_cached("DELETE FROM actions WHERE visit_id = ?1")?
        .execute([v.id.as_str()])?;
    let mut action = tx.prepare_cached(
        "INSERT OR REPLACE INTO actions (action_id, visit_id, person_id, what, who, due, done, cancelled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for a in &v.actions {
        action.execute(params![
            a.id.0,
            v.id.as_str(),
            v.person.as_str(),
            a.what.as_ref().map_or("", |f| f.value.as_str()),
            a.who.as_ref().map_or("", |f| f.value.as_str()),
            a.due.as_ref().map(|f| f.value.format("%Y-%m-%d").to_string()),
            a.done,
            a.cancelled,
        ])?;
    }
    // The full-text row shares the document's stable index id, so it is replaced by rowid
    // rather than found by scanning.
    let body: String = v
        .sections
        .iter()
        .map(|(_, text)| text.as_str())
        .chain([v.feedback.as_str()])
        .chain(
            v.actions
                .iter()
                .filter_map(|a| a.what.as_ref().map(|f| f.value.as_str())),
        )
        .collect::<Vec<_>>()
        .join("\n");
    tx.prepare_cached("DELETE FROM visit_text WHERE rowid = ?1")?
        .execute([row_id])?;
    tx.prepare_cached("INSERT INTO visit_text (rowid, visit_id, person_id, body) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![row_id, v.id.as_str(), v.person.as_str(), body])?;
    Ok(())
}

fn write_review(tx: &Transaction<'_>, r: &review::Review) -> Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO reviews (visit_id, state, contested) VALUES (?1, ?2, ?3)")?
        .execute(params![r.visit.as_str(), r.state.value.code(), r.state.is_contested()])?;
    Ok(())
}

/// Removes every index row of a person's documents (they are being dropped from this device).
pub(crate) fn remove_person(tx: &Transaction<'_>, person: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM reviews WHERE visit_id IN
         (SELECT doc_id FROM doc_index WHERE person_id = ?1 AND doc_type = 'visit')",
        [person],
    )?;
    tx.execute("DELETE FROM visit_text WHERE person_id = ?1", [person])?;
    for table in [
        "people",
        "allocations",
        "visits",
        "actions",
        "assessments",
        "observations",
        "doc_index",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE person_id = ?1"), [person])?;
    }
    Ok(())
}

/// Removes the index rows of one document (before its rows are rewritten or it is removed).
pub(crate) fn remove_doc(tx: &Transaction<'_>, id: &DocId) -> Result<()> {
    let row: Option<(i64, String)> = tx
        .prepare_cached("SELECT id, doc_type FROM doc_index WHERE doc_id = ?1")?
        .query_row([id.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((row_id, doc_type)) = row else {
        return Ok(());
    };
    let doc = id.as_str();
    match DocType::from_code(&doc_type) {
        Some(DocType::Person) => {
            tx.execute("DELETE FROM people WHERE person_id = ?1", [doc])?;
            tx.execute("DELETE FROM allocations WHERE person_id = ?1", [doc])?;
        }
        Some(DocType::Visit) => {
            tx.execute("DELETE FROM visits WHERE visit_id = ?1", [doc])?;
            tx.execute("DELETE FROM actions WHERE visit_id = ?1", [doc])?;
            tx.execute("DELETE FROM visit_text WHERE rowid = ?1", [row_id])?;
        }
        Some(DocType::Review) => {
            let visit = doc.strip_suffix(".review").unwrap_or(doc);
            tx.execute("DELETE FROM reviews WHERE visit_id = ?1", [visit])?;
        }
        Some(DocType::Assessment) => {
            tx.execute("DELETE FROM assessments WHERE assessment_id = ?1", [doc])?;
        }
        Some(DocType::Observations) => {
            tx.execute("DELETE FROM observations WHERE observations_id = ?1", [doc])?;
        }
        None => {}
    }
    tx.execute("DELETE FROM doc_index WHERE id = ?1", [row_id])?;
    Ok(())
}
