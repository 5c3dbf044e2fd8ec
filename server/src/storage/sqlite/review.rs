//! The review listing in SQLite: written with each document in the same transaction, read by
//! the team leads' pages. Access is decided above (by team); these queries take the teams.

use chrono::NaiveDate;
use outpost_core::sync::{Listing, encode_heads};
use outpost_core::{ChangeHash, DocId, PersonId, TeamId, WorkerId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::SqliteStorage;
use crate::error::{Error, Result};
use crate::storage::{
    ActionListing, CaseloadEntry, ListedPerson, QueueFilter, QueuePage, QueueState, RecordListing, ReviewIndex, Role,
    VisitListing,
};

/// Columns of a `VisitListing`, over `listed_visits v`, `listed_reviews r`, `listed_people lp`
/// and `workers w`.
const VISIT_COLUMNS: &str = "v.visit_id, v.person_id, coalesce(lp.preferred_name, lp.name, v.person_id),
    v.worker_id, coalesce(w.name, v.worker_id), v.visit_at, r.submitted_at, coalesce(r.state, 'draft'),
    coalesce(r.state = 'approved' AND r.approved_heads IS NOT v.heads, 0), v.safeguarding";

const VISIT_FROM: &str = "listed_visits v
    JOIN people p ON p.person_id = v.person_id
    LEFT JOIN listed_reviews r ON r.visit_id = v.visit_id
    LEFT JOIN listed_people lp ON lp.person_id = v.person_id
    LEFT JOIN workers w ON w.worker_id = v.worker_id";

/// Writes a document's listing; part of the transaction that stores the document.
pub(super) fn write_listing(
    conn: &Connection,
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
            conn.prepare_cached(
                "INSERT INTO listed_people (person_id, name, preferred_name, risk) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (person_id) DO UPDATE SET
                     name = excluded.name, preferred_name = excluded.preferred_name, risk = excluded.risk",
            )?
            .execute(params![person.as_str(), name, preferred_name, risk.code()])?;
        }
        Listing::Visit {
            worker,
            at,
            safeguarding,
            actions,
        } => {
            conn.prepare_cached(
                "INSERT INTO listed_visits (visit_id, person_id, worker_id, visit_at, safeguarding, heads)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (visit_id) DO UPDATE SET worker_id = excluded.worker_id,
                     visit_at = excluded.visit_at, safeguarding = excluded.safeguarding, heads = excluded.heads",
            )?
            .execute(params![
                doc.as_str(),
                person.as_str(),
                worker,
                at.timestamp(),
                safeguarding,
                encode_heads(heads)
            ])?;
            conn.prepare_cached("DELETE FROM listed_actions WHERE visit_id = ?1")?
                .execute([doc.as_str()])?;
            let mut insert = conn.prepare_cached(
                "INSERT OR REPLACE INTO listed_actions (visit_id, action_id, person_id, what, due, done, cancelled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for action in actions {
                insert.execute(params![
                    doc.as_str(),
                    action.id,
                    person.as_str(),
                    action.what,
                    action.due.map(|d| d.to_string()),
                    action.done,
                    action.cancelled
                ])?;
            }
            if !safeguarding {
                // Cleared: a concern raised again later alerts again.
                conn.prepare_cached("DELETE FROM safeguarding_alerts WHERE visit_id = ?1")?
                    .execute([doc.as_str()])?;
            }
        }
        Listing::Review {
            visit,
            state,
            submitted_at,
            approved_heads,
        } => {
            conn.prepare_cached(
                "INSERT INTO listed_reviews (visit_id, state, submitted_at, approved_heads) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (visit_id) DO UPDATE SET state = excluded.state,
                     submitted_at = excluded.submitted_at, approved_heads = excluded.approved_heads",
            )?
            .execute(params![
                visit.as_str(),
                state.code(),
                submitted_at.map(|t| t.timestamp()),
                approved_heads.as_deref().map(encode_heads)
            ])?;
        }
        Listing::Assessment { at, template_id } => {
            write_record(
                conn,
                doc,
                person,
                "assessment",
                at.timestamp(),
                &format!("Assessment ({template_id})"),
            )?;
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
            write_record(conn, doc, person, "observations", at.timestamp(), &summary)?;
        }
    }
    Ok(())
}

fn write_record(
    conn: &Connection,
    doc: &DocId,
    person: &PersonId,
    doc_type: &str,
    at: i64,
    summary: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO listed_records (doc_id, person_id, doc_type, at, summary) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (doc_id) DO UPDATE SET at = excluded.at, summary = excluded.summary",
    )?
    .execute(params![doc.as_str(), person.as_str(), doc_type, at, summary])?;
    Ok(())
}

impl ReviewIndex for SqliteStorage {
    fn queue(&self, teams: &[TeamId], filter: &QueueFilter, offset: usize, limit: usize) -> Result<QueuePage> {
        let mut args: Vec<Value> = Vec::new();
        let mut conditions = vec![in_teams("p.team_id", teams, &mut args)];
        conditions.push(
            match filter.state {
                QueueState::Waiting => {
                    "(r.state = 'submitted' OR (r.state = 'approved' AND r.approved_heads IS NOT v.heads))"
                }
                QueueState::Submitted => "r.state = 'submitted'",
                QueueState::ChangedSinceApproval => "(r.state = 'approved' AND r.approved_heads IS NOT v.heads)",
                QueueState::Approved => "r.state = 'approved'",
                QueueState::Returned => "r.state = 'returned'",
                QueueState::Any => "r.state IN ('submitted', 'approved', 'returned')",
            }
            .to_string(),
        );
        if let Some(worker) = &filter.worker {
            args.push(Value::Text(worker.to_string()));
            conditions.push(format!("v.worker_id = ?{}", args.len()));
        }
        if let Some(person) = filter.person.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            args.push(Value::Text(person.to_lowercase()));
            let n = args.len();
            conditions.push(format!(
                "(instr(lower(lp.name), ?{n}) > 0 OR instr(lower(coalesce(lp.preferred_name, '')), ?{n}) > 0)"
            ));
        }
        if let Some(from) = filter.from {
            args.push(Value::Integer(day_start(from)));
            conditions.push(format!("v.visit_at >= ?{}", args.len()));
        }
        if let Some(to) = filter.to.and_then(|d| d.succ_opt()) {
            args.push(Value::Integer(day_start(to)));
            conditions.push(format!("v.visit_at < ?{}", args.len()));
        }
        if filter.safeguarding_only {
            conditions.push("v.safeguarding = 1".into());
        }
        let filtered = format!("FROM {VISIT_FROM} WHERE {}", conditions.join(" AND "));
        let conn = self.conn()?;
        let total: i64 = conn
            .prepare_cached(&format!("SELECT count(*) {filtered}"))?
            .query_row(params_from_iter(args.iter()), |row| row.get(0))?;
        args.push(Value::Integer(limit as i64));
        args.push(Value::Integer(offset as i64));
        let n = args.len();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VISIT_COLUMNS} {filtered}
             ORDER BY coalesce(r.submitted_at, v.visit_at) DESC, v.visit_id LIMIT ?{} OFFSET ?{n}",
            n - 1
        ))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |row| Ok(visit_row(row)))?
            .map(|r| -> Result<VisitListing> { r? })
            .collect::<Result<_>>()?;
        Ok(QueuePage {
            rows,
            total: total as usize,
        })
    }

    fn team_workers(&self, teams: &[TeamId]) -> Result<Vec<(WorkerId, String, Role)>> {
        let mut args = Vec::new();
        let condition = in_teams("team_id", teams, &mut args);
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT worker_id, name, role FROM workers WHERE {condition} ORDER BY name, worker_id"
        ))?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (worker, name, role) = r?;
            let role = Role::from_code(&role).ok_or_else(|| Error::Internal(format!("stored role {role:?}")))?;
            Ok((WorkerId::new(worker)?, name, role))
        })
        .collect()
    }

    fn caseload(&self, teams: &[TeamId], today: NaiveDate) -> Result<Vec<CaseloadEntry>> {
        let mut args = vec![Value::Text(today.to_string())];
        let condition = in_teams("p.team_id", teams, &mut args);
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT p.person_id, coalesce(lp.preferred_name, lp.name, p.person_id), coalesce(lp.risk, 'unknown'),
                p.team_id,
                (SELECT max(visit_at) FROM listed_visits v WHERE v.person_id = p.person_id),
                (SELECT count(*) FROM listed_actions a
                    WHERE a.person_id = p.person_id AND a.done = 0 AND a.cancelled = 0),
                (SELECT count(*) FROM listed_actions a
                    WHERE a.person_id = p.person_id AND a.done = 0 AND a.cancelled = 0 AND a.due < ?1)
             FROM people p LEFT JOIN listed_people lp ON lp.person_id = p.person_id
             WHERE {condition} AND p.person_id NOT IN (SELECT duplicate_id FROM merged_people)
             ORDER BY CASE lp.risk WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END,
                 lower(coalesce(lp.preferred_name, lp.name, p.person_id)), p.person_id"
        ))?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?;
        rows.map(|r| {
            let (person, name, risk, team, last_visit_at, open, overdue) = r?;
            Ok(CaseloadEntry {
                person: PersonId::new(person)?,
                name,
                risk,
                team: TeamId::new(team)?,
                last_visit_at,
                open_actions: open as usize,
                overdue_actions: overdue as usize,
            })
        })
        .collect()
    }

    fn listed_person(&self, person: &PersonId) -> Result<Option<ListedPerson>> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(
                "SELECT p.team_id, coalesce(lp.preferred_name, lp.name, p.person_id), coalesce(lp.risk, 'unknown')
                 FROM people p LEFT JOIN listed_people lp ON lp.person_id = p.person_id WHERE p.person_id = ?1",
            )?
            .query_row([person.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        row.map(|(team, name, risk)| {
            Ok(ListedPerson {
                person: person.clone(),
                team: TeamId::new(team)?,
                name,
                risk,
            })
        })
        .transpose()
    }

    fn visit_listing(&self, visit: &DocId) -> Result<Option<VisitListing>> {
        let conn = self.conn()?;
        conn.prepare_cached(&format!(
            "SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE v.visit_id = ?1"
        ))?
        .query_row([visit.as_str()], |row| Ok(visit_row(row)))
        .optional()?
        .transpose()
    }

    fn person_visits(&self, person: &PersonId) -> Result<Vec<VisitListing>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE v.person_id = ?1 ORDER BY v.visit_at DESC, v.visit_id"
        ))?;
        stmt.query_map([person.as_str()], |row| Ok(visit_row(row)))?
            .map(|r| -> Result<VisitListing> { r? })
            .collect()
    }

    fn person_actions(&self, person: &PersonId) -> Result<Vec<ActionListing>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.visit_id, a.what, a.due, a.done, a.cancelled FROM listed_actions a
             LEFT JOIN listed_visits v ON v.visit_id = a.visit_id
             WHERE a.person_id = ?1 ORDER BY a.due IS NULL, a.due, v.visit_at DESC, a.action_id",
        )?;
        let rows = stmt.query_map([person.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, bool>(3)?,
                row.get::<_, bool>(4)?,
            ))
        })?;
        rows.map(|r| {
            let (visit, what, due, done, cancelled) = r?;
            Ok(ActionListing {
                visit: DocId::new(visit)?,
                what,
                due: due.and_then(|d| d.parse().ok()),
                done,
                cancelled,
            })
        })
        .collect()
    }

    fn person_records(&self, person: &PersonId) -> Result<Vec<RecordListing>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT doc_id, doc_type, at, summary FROM listed_records WHERE person_id = ?1 ORDER BY at DESC, doc_id",
        )?;
        let rows = stmt.query_map([person.as_str()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|r| {
            let (doc, doc_type, at, summary) = r?;
            Ok(RecordListing {
                doc: DocId::new(doc)?,
                doc_type,
                at,
                summary,
            })
        })
        .collect()
    }

    fn mark_alerted(&self, visit: &DocId, now: i64) -> Result<bool> {
        let added = self.conn()?.execute(
            "INSERT OR IGNORE INTO safeguarding_alerts (visit_id, sent_at) VALUES (?1, ?2)",
            params![visit.as_str(), now],
        )?;
        Ok(added == 1)
    }

    fn list(&self, doc: &DocId, person: &PersonId, heads: &[ChangeHash], listing: &Listing) -> Result<()> {
        write_listing(&*self.conn()?, doc, person, heads, listing)
    }

    fn needs_relist(&self) -> Result<bool> {
        let flag: Option<i64> = self
            .conn()?
            .query_row("SELECT value FROM meta WHERE key = 'relist'", [], |row| row.get(0))
            .optional()?;
        Ok(flag == Some(1))
    }

    fn all_docs(&self) -> Result<Vec<DocId>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT doc_id FROM documents ORDER BY doc_id")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|r| Ok(DocId::new(r?)?)).collect()
    }

    fn relist_done(&self) -> Result<()> {
        self.conn()?
            .execute("UPDATE meta SET value = 0 WHERE key = 'relist'", [])?;
        Ok(())
    }
}

/// `column IN (...)` over the teams, appending them to `args`. No teams matches nothing.
fn in_teams(column: &str, teams: &[TeamId], args: &mut Vec<Value>) -> String {
    if teams.is_empty() {
        return "0".into();
    }
    let placeholders: Vec<String> = teams
        .iter()
        .map(|team| {
            args.push(Value::Text(team.to_string()));
            format!("?{}", args.len())
        })
        .collect();
    format!("{column} IN ({})", placeholders.join(", "))
}

fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp())
}

fn visit_row(row: &Row<'_>) -> Result<VisitListing> {
    Ok(VisitListing {
        visit: DocId::new(row.get::<_, String>(0)?)?,
        person: PersonId::new(row.get::<_, String>(1)?)?,
        person_name: row.get(2)?,
        worker: row.get(3)?,
        worker_name: row.get(4)?,
        visit_at: row.get(5)?,
        submitted_at: row.get(6)?,
        state: row.get(7)?,
        changed_since_approval: row.get(8)?,
        safeguarding: row.get(9)?,
    })
}
