//! The review listing in PostgreSQL: written with each document in the same transaction, read by
//! the team leads' pages, with the same queries and order as SQLite's. Text is ordered by
//! `COLLATE "C"` (bytes, as SQLite orders it), whatever the database's own collation.

mod listing;

use chrono::NaiveDate;
use outpost_core::sync::Listing;
use outpost_core::{ChangeHash, DocId, PersonId, TeamId, WorkerId};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub(super) use self::listing::write_listing;

use super::PostgresStorage;
use super::Sql;
use crate::error::{Error, Result};
use crate::storage::{
    ActionListing, CaseloadEntry, ListedPerson, QueueFilter, QueuePage, QueueState, RecordListing, ReviewIndex, Role,
    VisitListing,
};

/// Columns of a `VisitListing`, over `listed_visits v`, `listed_reviews r`, `listed_people lp`
/// and `workers w`.
const VISIT_COLUMNS: &str = "v.visit_id, v.person_id, coalesce(lp.preferred_name, lp.name, v.person_id),
    v.worker_id, coalesce(w.name, v.worker_id), v.visit_at, r.submitted_at, coalesce(r.state, 'draft'),
    coalesce(r.state = 'approved' AND r.approved_heads IS DISTINCT FROM v.heads, false), v.safeguarding";

const VISIT_FROM: &str = "listed_visits v
    JOIN people p ON p.person_id = v.person_id
    LEFT JOIN listed_reviews r ON r.visit_id = v.visit_id
    LEFT JOIN listed_people lp ON lp.person_id = v.person_id
    LEFT JOIN workers w ON w.worker_id = v.worker_id";

impl ReviewIndex for PostgresStorage {
    fn queue(&self, teams: &[TeamId], filter: &QueueFilter, offset: usize, limit: usize) -> Result<QueuePage> {
        let mut args = Args::default();
        let mut conditions = vec![format!("p.team_id = ANY({})", args.push(team_ids(teams)))];
        conditions.push(
            match filter.state {
                QueueState::Waiting => {
                    "(r.state = 'submitted' OR (r.state = 'approved' AND r.approved_heads IS DISTINCT FROM v.heads))"
                }
                QueueState::Submitted => "r.state = 'submitted'",
                QueueState::ChangedSinceApproval => {
                    "(r.state = 'approved' AND r.approved_heads IS DISTINCT FROM v.heads)"
                }
                QueueState::Approved => "r.state = 'approved'",
                QueueState::Returned => "r.state = 'returned'",
                QueueState::Any => "r.state IN ('submitted', 'approved', 'returned')",
            }
            .to_string(),
        );
        if let Some(worker) = &filter.worker {
            conditions.push(format!("v.worker_id = {}", args.push(worker.to_string())));
        }
        if let Some(person) = filter.person.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            let n = args.push(person.to_lowercase());
            conditions.push(format!(
                "(strpos(lower(lp.name), {n}) > 0 OR strpos(lower(coalesce(lp.preferred_name, '')), {n}) > 0)"
            ));
        }
        if let Some(from) = filter.from {
            conditions.push(format!("v.visit_at >= {}", args.push(day_start(from))));
        }
        if let Some(to) = filter.to.and_then(|d| d.succ_opt()) {
            conditions.push(format!("v.visit_at < {}", args.push(day_start(to))));
        }
        if filter.safeguarding_only {
            conditions.push("v.safeguarding".into());
        }
        let filtered = format!("FROM {VISIT_FROM} WHERE {}", conditions.join(" AND "));
        let client = self.client()?;
        self.block_on(async {
            let total: i64 = client
                .query_one(&format!("SELECT count(*) {filtered}"), &args.refs())
                .await?
                .try_get(0)?;
            let limit = args.push(i64::try_from(limit).unwrap_or(i64::MAX));
            let offset = args.push(i64::try_from(offset).unwrap_or(i64::MAX));
            let rows = client
                .query(
                    &format!(
                        "SELECT {VISIT_COLUMNS} {filtered}
                         ORDER BY coalesce(r.submitted_at, v.visit_at) DESC, v.visit_id COLLATE \"C\"
                         LIMIT {limit} OFFSET {offset}"
                    ),
                    &args.refs(),
                )
                .await?;
            Ok(QueuePage {
                rows: rows.iter().map(visit_row).collect::<Result<_>>()?,
                total: total as usize,
            })
        })
    }

    fn team_workers(&self, teams: &[TeamId]) -> Result<Vec<(WorkerId, String, Role)>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT worker_id, name, role FROM workers WHERE team_id = ANY($1)
             ORDER BY name COLLATE \"C\", worker_id COLLATE \"C\"",
            &[&team_ids(teams)],
        ))?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get(2)?;
                let role = Role::from_code(&role).ok_or_else(|| Error::Internal(format!("stored role {role:?}")))?;
                Ok((WorkerId::new(row.try_get::<_, String>(0)?)?, row.try_get(1)?, role))
            })
            .collect()
    }

    fn caseload(&self, teams: &[TeamId], today: NaiveDate) -> Result<Vec<CaseloadEntry>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT p.person_id, coalesce(lp.preferred_name, lp.name, p.person_id), coalesce(lp.risk, 'unknown'),
                p.team_id,
                (SELECT max(visit_at) FROM listed_visits v WHERE v.person_id = p.person_id),
                (SELECT count(*) FROM listed_actions a
                    WHERE a.person_id = p.person_id AND NOT a.done AND NOT a.cancelled),
                (SELECT count(*) FROM listed_actions a
                    WHERE a.person_id = p.person_id AND NOT a.done AND NOT a.cancelled
                        AND a.due COLLATE \"C\" < $1)
             FROM people p LEFT JOIN listed_people lp ON lp.person_id = p.person_id
             WHERE p.team_id = ANY($2) AND p.person_id NOT IN (SELECT duplicate_id FROM merged_people)
             ORDER BY CASE lp.risk WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END,
                 lower(coalesce(lp.preferred_name, lp.name, p.person_id)) COLLATE \"C\", p.person_id COLLATE \"C\"",
            &[&today.to_string(), &team_ids(teams)],
        ))?;
        rows.iter()
            .map(|row| {
                Ok(CaseloadEntry {
                    person: PersonId::new(row.try_get::<_, String>(0)?)?,
                    name: row.try_get(1)?,
                    risk: row.try_get(2)?,
                    team: TeamId::new(row.try_get::<_, String>(3)?)?,
                    last_visit_at: row.try_get(4)?,
                    open_actions: row.try_get::<_, i64>(5)? as usize,
                    overdue_actions: row.try_get::<_, i64>(6)? as usize,
                })
            })
            .collect()
    }

    fn listed_person(&self, person: &PersonId) -> Result<Option<ListedPerson>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            "SELECT p.team_id, coalesce(lp.preferred_name, lp.name, p.person_id), coalesce(lp.risk, 'unknown')
             FROM people p LEFT JOIN listed_people lp ON lp.person_id = p.person_id WHERE p.person_id = $1",
            &[&person.as_str()],
        ))?;
        row.map(|row| {
            Ok(ListedPerson {
                person: person.clone(),
                team: TeamId::new(row.try_get::<_, String>(0)?)?,
                name: row.try_get(1)?,
                risk: row.try_get(2)?,
            })
        })
        .transpose()
    }

    fn visit_listing(&self, visit: &DocId) -> Result<Option<VisitListing>> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt(
            &format!("SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE v.visit_id = $1"),
            &[&visit.as_str()],
        ))?;
        row.as_ref().map(visit_row).transpose()
    }

    fn person_visits(&self, person: &PersonId) -> Result<Vec<VisitListing>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            &format!(
                "SELECT {VISIT_COLUMNS} FROM {VISIT_FROM} WHERE v.person_id = $1
                 ORDER BY v.visit_at DESC, v.visit_id COLLATE \"C\""
            ),
            &[&person.as_str()],
        ))?;
        rows.iter().map(visit_row).collect()
    }

    fn person_actions(&self, person: &PersonId) -> Result<Vec<ActionListing>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT a.visit_id, a.what, a.due, a.done, a.cancelled FROM listed_actions a
             LEFT JOIN listed_visits v ON v.visit_id = a.visit_id
             WHERE a.person_id = $1
             ORDER BY a.due IS NULL, a.due COLLATE \"C\", v.visit_at DESC, a.action_id COLLATE \"C\"",
            &[&person.as_str()],
        ))?;
        rows.iter()
            .map(|row| {
                Ok(ActionListing {
                    visit: DocId::new(row.try_get::<_, String>(0)?)?,
                    what: row.try_get(1)?,
                    due: row.try_get::<_, Option<String>>(2)?.and_then(|d| d.parse().ok()),
                    done: row.try_get(3)?,
                    cancelled: row.try_get(4)?,
                })
            })
            .collect()
    }

    fn person_records(&self, person: &PersonId) -> Result<Vec<RecordListing>> {
        let client = self.client()?;
        let rows = self.block_on(client.query(
            "SELECT doc_id, doc_type, at, summary FROM listed_records WHERE person_id = $1
             ORDER BY at DESC, doc_id COLLATE \"C\"",
            &[&person.as_str()],
        ))?;
        rows.iter()
            .map(|row| {
                Ok(RecordListing {
                    doc: DocId::new(row.try_get::<_, String>(0)?)?,
                    doc_type: row.try_get(1)?,
                    at: row.try_get(2)?,
                    summary: row.try_get(3)?,
                })
            })
            .collect()
    }

    fn mark_alerted(&self, visit: &DocId, now: i64) -> Result<bool> {
        let client = self.client()?;
        let added = self.block_on(client.execute(
            "INSERT INTO safeguarding_alerts (visit_id, sent_at) VALUES ($1, $2) ON CONFLICT (visit_id) DO NOTHING",
            &[&visit.as_str(), &now],
        ))?;
        Ok(added == 1)
    }

    fn list(&self, doc: &DocId, person: &PersonId, heads: &[ChangeHash], listing: &Listing) -> Result<()> {
        let mut client = self.client()?;
        self.block_on(async {
            // A visit's listing is several statements: its actions must not be seen half-replaced.
            let tx = client.transaction().await?;
            write_listing(&tx, doc, person, heads, listing).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn needs_relist(&self) -> Result<bool> {
        let client = self.client()?;
        let row = self.block_on(client.query_opt("SELECT value FROM meta WHERE key = 'relist'", &[]))?;
        Ok(match row {
            Some(row) => row.try_get::<_, String>(0)? == "1",
            None => false,
        })
    }

    fn all_docs(&self) -> Result<Vec<DocId>> {
        let client = self.client()?;
        let rows = self.block_on(client.query("SELECT doc_id FROM documents ORDER BY doc_id COLLATE \"C\"", &[]))?;
        rows.iter()
            .map(|row| Ok(DocId::new(row.try_get::<_, String>(0)?)?))
            .collect()
    }

    fn relist_done(&self) -> Result<()> {
        let client = self.client()?;
        self.block_on(client.execute("UPDATE meta SET value = '0' WHERE key = 'relist'", &[]))?;
        Ok(())
    }
}

/// A query's parameters, numbered as they are added.
#[derive(Default)]
struct Args(Vec<Box<dyn ToSql + Sync>>);

impl Args {
    /// Adds a parameter and returns its placeholder.
    fn push(&mut self, value: impl ToSql + Sync + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|value| &**value).collect()
    }
}

/// The teams as a TEXT[] for `= ANY(...)`; an empty one matches nothing.
fn team_ids(teams: &[TeamId]) -> Vec<String> {
    teams.iter().map(|team| team.to_string()).collect()
}

fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp())
}

fn visit_row(row: &Row) -> Result<VisitListing> {
    Ok(VisitListing {
        visit: DocId::new(row.try_get::<_, String>(0)?)?,
        person: PersonId::new(row.try_get::<_, String>(1)?)?,
        person_name: row.try_get(2)?,
        worker: row.try_get(3)?,
        worker_name: row.try_get(4)?,
        visit_at: row.try_get(5)?,
        submitted_at: row.try_get(6)?,
        state: row.try_get(7)?,
        changed_since_approval: row.try_get(8)?,
        safeguarding: row.try_get(9)?,
    })
}
