//! Queries over the index. None of them loads a document.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Row, params};

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId, TeamId, WorkerId};
use crate::model::person::RiskTier;
use crate::model::review::ReviewState;
use crate::model::visit::Setting;

#[derive(Debug, Clone, PartialEq)]
pub struct CaseloadRow {
    pub person: PersonId,
    pub name: String,
    pub preferred_name: Option<String>,
    pub risk: Option<RiskTier>,
    pub last_visit: Option<DateTime<Utc>>,
    pub open_actions: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisitRow {
    pub visit: DocId,
    pub person: PersonId,
    pub worker: String,
    pub at: Option<DateTime<Utc>>,
    pub setting: Option<Setting>,
    pub safeguarding: bool,
    pub review_state: Option<ReviewState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionRow {
    pub visit: DocId,
    pub person: PersonId,
    pub action: String,
    pub what: String,
    pub who: String,
    pub due: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub visit: DocId,
    pub person: PersonId,
    /// The matching passage with the match wrapped in `[` `]`.
    pub snippet: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageStats {
    /// Snapshots and stored changes: the documents themselves.
    pub document_bytes: i64,
    /// Pages used by the query index and full-text index.
    pub index_bytes: i64,
    pub documents: i64,
    pub stored_changes: i64,
}

const CASELOAD_COLUMNS: &str = "p.person_id, p.name, p.preferred_name, p.risk_tier,
    (SELECT max(v.visit_at) FROM visits v WHERE v.person_id = p.person_id),
    (SELECT count(*) FROM actions a WHERE a.person_id = p.person_id AND a.done = 0 AND a.cancelled = 0)";

const VISIT_COLUMNS: &str = "v.visit_id, v.person_id, v.worker_id, v.visit_at, v.setting, v.safeguarding, r.state";

fn doc_id(row: &Row<'_>, i: usize) -> rusqlite::Result<DocId> {
    let s: String = row.get(i)?;
    DocId::new(s).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

fn time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

fn date(s: Option<String>) -> Option<NaiveDate> {
    s.and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
}

fn caseload_row(row: &Row<'_>) -> rusqlite::Result<CaseloadRow> {
    Ok(CaseloadRow {
        person: doc_id(row, 0)?,
        name: row.get(1)?,
        preferred_name: row.get(2)?,
        risk: RiskTier::from_code(&row.get::<_, String>(3)?),
        last_visit: time(row.get(4)?),
        open_actions: row.get(5)?,
    })
}

fn visit_row(row: &Row<'_>) -> rusqlite::Result<VisitRow> {
    Ok(VisitRow {
        visit: doc_id(row, 0)?,
        person: doc_id(row, 1)?,
        worker: row.get(2)?,
        at: time(row.get(3)?),
        setting: Setting::from_code(&row.get::<_, String>(4)?),
        safeguarding: row.get(5)?,
        review_state: row
            .get::<_, Option<String>>(6)?
            .and_then(|s| ReviewState::from_code(&s)),
    })
}

/// Turns what a worker typed into a safe FTS5 query: each word a quoted prefix term, all
/// required. FTS5 operators typed by accident are matched as words, never parsed.
fn fts_query(input: &str) -> Result<String> {
    let terms: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    if terms.is_empty() {
        return Err(Error::invalid("search", "type at least one word to search for"));
    }
    Ok(terms.join(" "))
}

impl Store {
    /// The people allocated to a worker, by name.
    pub fn caseload(&self, worker: &WorkerId) -> Result<Vec<CaseloadRow>> {
        let sql = format!(
            "SELECT {CASELOAD_COLUMNS} FROM allocations al JOIN people p ON p.person_id = al.person_id
             WHERE al.worker_id = ?1 ORDER BY p.name, p.person_id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([worker.as_str()], caseload_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Everyone whose record a team holds, by name.
    pub fn team_caseload(&self, team: &TeamId) -> Result<Vec<CaseloadRow>> {
        let sql = format!("SELECT {CASELOAD_COLUMNS} FROM people p WHERE p.team = ?1 ORDER BY p.name, p.person_id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([team.as_str()], caseload_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A person's visits, newest first.
    pub fn visits_for_person(&self, person: &PersonId) -> Result<Vec<VisitRow>> {
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM visits v LEFT JOIN reviews r ON r.visit_id = v.visit_id
             WHERE v.person_id = ?1 ORDER BY v.visit_at DESC, v.visit_id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([person.as_str()], visit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Visits in a review state, newest first.
    pub fn visits_in_review_state(&self, state: ReviewState) -> Result<Vec<VisitRow>> {
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM reviews r JOIN visits v ON v.visit_id = r.visit_id
             WHERE r.state = ?1 ORDER BY v.visit_at DESC, v.visit_id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([state.code()], visit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The store's current revision: pass it to `changed_since` later.
    pub fn revision(&self) -> Result<i64> {
        self.meta_i64("revision")
    }

    /// Documents written (locally or by import) after `revision`, oldest write first.
    pub fn changed_since(&self, revision: i64) -> Result<Vec<(DocId, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, revision FROM documents WHERE revision > ?1 ORDER BY revision")?;
        let rows = stmt.query_map([revision], |row| Ok((doc_id(row, 0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Open actions whose due date is before `today`, most overdue first.
    pub fn overdue_actions(&self, today: NaiveDate) -> Result<Vec<ActionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT visit_id, person_id, action_id, what, who, due FROM actions
             WHERE done = 0 AND cancelled = 0 AND due < ?1 ORDER BY due, visit_id, action_id",
        )?;
        let rows = stmt.query_map([today.format("%Y-%m-%d").to_string()], |row| {
            Ok(ActionRow {
                visit: doc_id(row, 0)?,
                person: doc_id(row, 1)?,
                action: row.get(2)?,
                what: row.get(3)?,
                who: row.get(4)?,
                due: date(row.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Full-text search over visit text, best match first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let query = fts_query(query)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT visit_id, person_id, snippet(visit_text, 2, '[', ']', '…', 12) FROM visit_text
             WHERE visit_text MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![query, limit as i64], |row| {
            Ok(SearchHit {
                visit: doc_id(row, 0)?,
                person: doc_id(row, 1)?,
                snippet: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every document belonging to a person, the person's own record included.
    pub fn documents_of_person(&self, person: &PersonId) -> Result<Vec<DocId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id FROM doc_index WHERE person_id = ?1 ORDER BY doc_id")?;
        let rows = stmt.query_map([person.as_str()], |row| doc_id(row, 0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn storage_stats(&self) -> Result<StorageStats> {
        let (document_bytes, documents): (i64, i64) = self.conn.query_row(
            "SELECT coalesce(sum(length(snapshot)), 0) + coalesce(sum(length(heads)), 0), count(*) FROM documents",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let (change_bytes, stored_changes): (i64, i64) = self.conn.query_row(
            "SELECT coalesce(sum(length(data)), 0), count(*) FROM changes",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        // Every table and index that is not the documents themselves or bookkeeping.
        let index_bytes: i64 = self.conn.query_row(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat
             WHERE name NOT IN ('documents', 'changes', 'meta', 'sqlite_schema', 'sqlite_sequence')
               AND name NOT LIKE 'sqlite_autoindex_documents%' AND name NOT LIKE 'sqlite_autoindex_changes%'
               AND name NOT LIKE 'sqlite_autoindex_meta%' AND name <> 'documents_revision'",
            [],
            |row| row.get(0),
        )?;
        Ok(StorageStats {
            document_bytes: document_bytes + change_bytes,
            index_bytes,
            documents,
            stored_changes,
        })
    }

    /// Every index row as text, sorted: lets a test compare a rebuilt index with the live one.
    #[doc(hidden)]
    pub fn index_dump(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (table, sql) in [
            ("doc_index", "SELECT doc_id, doc_type, person_id FROM doc_index"),
            ("people", "SELECT * FROM people"),
            ("allocations", "SELECT * FROM allocations"),
            ("visits", "SELECT * FROM visits"),
            ("reviews", "SELECT * FROM reviews"),
            ("actions", "SELECT * FROM actions"),
            ("assessments", "SELECT * FROM assessments"),
            ("observations", "SELECT * FROM observations"),
            ("visit_text", "SELECT visit_id, person_id, body FROM visit_text"),
        ] {
            let mut stmt = self.conn.prepare(sql)?;
            let columns = stmt.column_count();
            let rows = stmt.query_map([], |row| {
                let values: Vec<String> = (0..columns)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                    .collect::<rusqlite::Result<_>>()?;
                Ok(format!("{table}: {}", values.join(" | ")))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_input_never_reaches_fts5_as_syntax() {
        assert_eq!(
            fts_query("garden NEAR(\"x\"").ok().as_deref(),
            Some("\"garden\"* \"NEAR\"* \"x\"*")
        );
        assert!(matches!(fts_query("  ** "), Err(Error::InvalidInput { field, .. }) if field == "search"));
    }
}
