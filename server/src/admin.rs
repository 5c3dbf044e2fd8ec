//! The admin commands, run by the same binary as the server: teams, workers, enrolment codes,
//! devices, reassignment, backup and restore. Each returns the text to print; each change is
//! written to the audit log as done by "admin".

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use outpost_core::{DeviceId, DocId, PersonId, TeamId, WorkerId};

use crate::auth::{hash_enrolment_code, new_enrolment_code};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, DeviceRow, MAX_LEASE_DAYS, Role, ScopePolicy, Storage};
use crate::web::sign_in::hash_password;

/// The longest an enrolment code may stay valid: an unspent code is a device credential waiting
/// for whoever reads it first.
const MAX_CODE_HOURS: i64 = 168;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Create a team.
    CreateTeam {
        #[arg(value_parser = team_id)]
        id: TeamId,
        #[arg(long)]
        name: String,
        /// Which people its workers' devices hold: `team` (the whole caseload) or `allocated`
        /// (only the people allocated to that worker).
        #[arg(long, value_parser = scope)]
        scope: ScopePolicy,
    },
    /// Add a worker to a team.
    AddWorker {
        #[arg(value_parser = worker_id)]
        id: WorkerId,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = team_id)]
        team: TeamId,
        /// A team lead, who reviews visits.
        #[arg(long)]
        lead: bool,
    },
    /// Change which people a team's devices hold: `team` or `allocated`.
    SetScope {
        #[arg(value_parser = team_id)]
        team: TeamId,
        #[arg(value_parser = scope)]
        scope: ScopePolicy,
    },
    /// Issue a one-time code that enrols one device for a worker.
    EnrolCode {
        #[arg(value_parser = worker_id)]
        worker: WorkerId,
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(1..=MAX_CODE_HOURS))]
        valid_hours: i64,
    },
    /// List enrolled devices.
    Devices,
    /// Refuse a device's credential from now on (a lost or stolen phone): at its next contact
    /// it is told to wipe its store, and does, unsent changes included.
    Revoke {
        #[arg(value_parser = device_id)]
        device: DeviceId,
    },
    /// Retire a device that is being handed in: at its next sync it sends everything the server
    /// lacks, then wipes its store, and its credential is refused from then on.
    Retire {
        #[arg(value_parser = device_id)]
        device: DeviceId,
    },
    /// How many days a team's devices may go without reaching the server before their records
    /// lock (default 14). Devices get the new term at their next sync.
    SetLease {
        #[arg(value_parser = team_id)]
        team: TeamId,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LEASE_DAYS)))]
        days: u32,
    },
    /// Move a person supported, and their records, to another team.
    Reassign {
        #[arg(value_parser = person_id)]
        person: PersonId,
        #[arg(long, value_parser = team_id)]
        team: TeamId,
    },
    /// Erase a person supported for good, on their request: every record of theirs, here now and
    /// on every device at its next sync. Audited with the reason, never the content.
    ErasePerson {
        #[arg(value_parser = person_id)]
        person: PersonId,
        #[arg(long)]
        reason: String,
    },
    /// Remove one record (a visit with its review, an assessment, observations) from a
    /// person's record for good, as for a record made on the wrong person.
    RemoveRecord {
        #[arg(value_parser = person_id)]
        record: DocId,
        #[arg(long)]
        reason: String,
    },
    /// How many years after a case closes a team's records are kept (`--keep` keeps them);
    /// `retention-run` erases those past it.
    SetRetention {
        #[arg(value_parser = team_id)]
        team: TeamId,
        #[arg(long, required_unless_present = "keep")]
        years: Option<u32>,
        #[arg(long, conflicts_with = "years")]
        keep: bool,
    },
    /// Record that a person's case closed (today, or `--on YYYY-MM-DD`), or `--reopen` it.
    CloseCase {
        #[arg(value_parser = person_id)]
        person: PersonId,
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        #[arg(long, conflicts_with = "on")]
        reopen: bool,
    },
    /// Erase everyone whose case closed longer ago than their team's retention.
    RetentionRun,
    /// Everything held about a person (their records, review history, who accessed them) as a
    /// document that prints to PDF, or as JSON; printed, or written to a new file.
    SubjectAccess {
        #[arg(value_parser = person_id)]
        person: PersonId,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Set a team lead's password for the review pages, read from standard input (one line).
    /// Their signed-in sessions end.
    SetPassword {
        #[arg(value_parser = worker_id)]
        lead: WorkerId,
        /// Filled from standard input, never from the command line (it would show in `ps`).
        #[arg(skip)]
        password: String,
    },
    /// Set where a team lead's safeguarding alerts are emailed.
    SetEmail {
        #[arg(value_parser = worker_id)]
        lead: WorkerId,
        #[arg(value_parser = email)]
        email: String,
    },
    /// Let a team lead review another team's visits as well as their own.
    AddLeadTeam {
        #[arg(value_parser = worker_id)]
        lead: WorkerId,
        #[arg(long, value_parser = team_id)]
        team: TeamId,
    },
    /// Write a consistent copy of the database to a new file; safe while the server runs.
    Backup { dest: PathBuf },
    /// Replace the database with a backup. Stop the server first: it must not hold the database
    /// open while the file is replaced.
    Restore { backup: PathBuf },
}

/// Runs one command against the server's `database`, open as `storage`, and returns what to
/// print.
pub fn run(command: Command, storage: &dyn Storage, database: &Database) -> Result<String> {
    let now = Utc::now().timestamp();
    let audit = |storage: &dyn Storage, action: &str, subject: &str, detail: String| {
        storage.audit(&AuditEntry {
            at: now,
            who: "admin".into(),
            action: action.into(),
            subject: subject.into(),
            detail,
            from: String::new(),
        })
    };
    match command {
        Command::CreateTeam { id, name, scope } => {
            storage.create_team(&id, &name, scope)?;
            audit(storage, "create-team", id.as_str(), format!("scope {}", scope.code()))?;
            Ok(format!("created team {id} ({name}), scope {}", scope.code()))
        }
        Command::AddWorker { id, name, team, lead } => {
            let role = if lead { Role::Lead } else { Role::Worker };
            storage.add_worker(&id, &name, role, &team)?;
            audit(
                storage,
                "add-worker",
                id.as_str(),
                format!("team {team}, role {}", role.code()),
            )?;
            Ok(format!("added {} {id} ({name}) to team {team}", role.code()))
        }
        Command::SetScope { team, scope } => {
            storage.set_scope(&team, scope)?;
            audit(storage, "set-scope", team.as_str(), format!("scope {}", scope.code()))?;
            Ok(format!(
                "team {team} now has scope {}; devices follow at their next sync",
                scope.code()
            ))
        }
        Command::EnrolCode { worker, valid_hours } => {
            let code = new_enrolment_code();
            let expires_at = now + valid_hours * 3600;
            storage.add_enrolment_code(&worker, &hash_enrolment_code(&code), expires_at)?;
            // The code itself is never stored or audited: it is shown here once.
            audit(
                storage,
                "issue-enrolment-code",
                worker.as_str(),
                format!("valid until {}", time(expires_at)),
            )?;
            Ok(format!(
                "Enrolment code for worker {worker}, valid once until {} UTC:\n\n    {code}\n\n\
                 It is shown only now. To enrol a device, give the worker:\n  \
                 - this server's address (https://host:port)\n  \
                 - the CA certificate file the server's TLS certificate chains to\n    \
                 (for a development server, tls/ca.pem in its data directory)\n  \
                 - this code",
                time(expires_at)
            ))
        }
        Command::Devices => Ok(device_table(&storage.devices()?)),
        Command::Revoke { device } => {
            storage.revoke(&device, now)?;
            audit(storage, "revoke-device", device.as_str(), String::new())?;
            Ok(format!(
                "revoked device {device}: the server refuses its credential from now on, and tells \
                 it to wipe its store at its next contact"
            ))
        }
        Command::Retire { device } => {
            storage.request_retirement(&device, now)?;
            audit(storage, "retire-device", device.as_str(), String::new())?;
            Ok(format!(
                "device {device} will send everything it holds at its next sync, then wipe itself; \
                 `devices` shows it retired once it has"
            ))
        }
        Command::SetLease { team, days } => {
            storage.set_lease_days(&team, days)?;
            audit(storage, "set-lease", team.as_str(), format!("{days} days"))?;
            Ok(format!(
                "team {team}'s devices lock their records after {days} days without reaching the \
                 server, from their next sync"
            ))
        }
        Command::Reassign { person, team } => {
            storage.reassign(&person, &team)?;
            audit(storage, "reassign-person", person.as_str(), format!("to team {team}"))?;
            Ok(format!(
                "moved person {person} to team {team}; devices follow at their next sync"
            ))
        }
        Command::ErasePerson { person, reason } => {
            let grounds = crate::erasure::Grounds::Request(reason);
            let count = crate::erasure::erase_person(storage, &person, &grounds, "admin", "")?;
            Ok(format!(
                "erased person {person} and {count} record(s); devices erase them at their next sync"
            ))
        }
        Command::RemoveRecord { record, reason } => {
            let grounds = crate::erasure::Grounds::Removed(reason);
            let count = crate::erasure::remove_document(storage, &record, &grounds, "admin", "")?;
            Ok(format!(
                "removed {count} record(s); devices erase them at their next sync"
            ))
        }
        Command::SetRetention { team, years, .. } => {
            storage.set_retention(&team, years)?;
            let policy = years.map_or("kept".to_string(), |y| format!("{y} years after the case closes"));
            audit(storage, "set-retention", team.as_str(), policy.clone())?;
            Ok(format!("team {team}'s records: {policy}"))
        }
        Command::CloseCase { person, on, reopen } => {
            let at = if reopen {
                None
            } else {
                Some(on.map_or_else(
                    || chrono::Utc::now().timestamp(),
                    |d| d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp()),
                ))
            };
            storage.close_case(&person, at)?;
            let what = if reopen { "reopened" } else { "closed" };
            audit(storage, &format!("case-{what}"), person.as_str(), String::new())?;
            Ok(format!("case of person {person} {what}"))
        }
        Command::RetentionRun => {
            let erased = crate::erasure::run_retention(storage, chrono::Utc::now().timestamp(), "admin")?;
            Ok(format!("erased {} person(s) past their team's retention", erased.len()))
        }
        Command::SubjectAccess { person, json, out } => {
            crate::subject_access::run_admin(storage, &person, json, out.as_deref())
        }
        Command::SetPassword { lead, password } => {
            match storage.worker(&lead)? {
                Some((Role::Lead, _)) => {}
                Some(_) => return Err(Error::bad("lead", format!("{lead} is not a team lead"))),
                None => return Err(Error::NotFound(format!("worker {lead}"))),
            }
            storage.set_password(&lead, &hash_password(&password)?, now)?;
            audit(storage, "set-password", lead.as_str(), String::new())?;
            Ok(format!(
                "set the review pages password for {lead}; their sessions have ended"
            ))
        }
        Command::SetEmail { lead, email } => {
            storage.set_email(&lead, Some(&email))?;
            audit(storage, "set-email", lead.as_str(), String::new())?;
            Ok(format!("safeguarding alerts for {lead} go to {email}"))
        }
        Command::AddLeadTeam { lead, team } => {
            storage.add_lead_team(&lead, &team)?;
            audit(storage, "add-lead-team", lead.as_str(), format!("team {team}"))?;
            Ok(format!("{lead} now reviews team {team} too"))
        }
        Command::Backup { dest } => {
            database.backup(&dest)?;
            // A backup holds every record, so where one was written belongs in the audit log.
            audit(storage, "backup", &dest.display().to_string(), String::new())?;
            Ok(format!("backed up to {}", dest.display()))
        }
        Command::Restore { backup } => {
            let db_path = database.sqlite("restore")?;
            database.restore(&backup)?;
            // The audit entry goes into the restored database: the old one is gone.
            let restored = database.open()?;
            audit(
                restored.as_ref(),
                "restore",
                &db_path.display().to_string(),
                format!("from {}", backup.display()),
            )?;
            Ok(format!(
                "restored {} from {}. It has a new epoch: each device compares what it holds with \
                 the server at its next sync and sends back anything newer than the backup. \
                 Start the server again.",
                db_path.display(),
                backup.display()
            ))
        }
    }
}

fn device_table(devices: &[DeviceRow]) -> String {
    if devices.is_empty() {
        return "no devices enrolled".into();
    }
    let optional = |at: Option<i64>| at.map_or_else(|| "-".to_string(), time);
    let service = |d: &DeviceRow| match (d.revoked_at, d.retired_at, d.retire_requested_at) {
        (Some(at), _, _) => format!("revoked {}", time(at)),
        (None, Some(at), _) => format!("retired {}", time(at)),
        (None, None, Some(at)) => format!("retiring since {}", time(at)),
        (None, None, None) => "-".to_string(),
    };
    let mut rows = vec![
        [
            "device",
            "worker",
            "label",
            "enrolled (UTC)",
            "last sync",
            "out of service",
        ]
        .map(String::from),
    ];
    rows.extend(devices.iter().map(|d| {
        [
            d.device.to_string(),
            d.worker.to_string(),
            d.label.clone(),
            time(d.enrolled_at),
            optional(d.last_sync_at),
            service(d),
        ]
    }));
    let mut widths = [0; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect();
    lines.join("\n")
}

/// Unix seconds as a UTC date and minute, as an admin reads them.
fn time(at: i64) -> String {
    DateTime::<Utc>::from_timestamp(at, 0).map_or_else(|| at.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

fn team_id(s: &str) -> outpost_core::Result<TeamId> {
    TeamId::new(s)
}

fn worker_id(s: &str) -> outpost_core::Result<WorkerId> {
    WorkerId::new(s)
}

fn device_id(s: &str) -> outpost_core::Result<DeviceId> {
    DeviceId::new(s)
}

fn person_id(s: &str) -> outpost_core::Result<PersonId> {
    PersonId::new(s)
}

/// An address to email: one `@`, no spaces or control characters, at most 254 characters.
fn email(s: &str) -> Result<String, String> {
    let s = s.trim();
    let valid = s.len() <= 254
        && s.matches('@').count() == 1
        && !s.starts_with('@')
        && !s.ends_with('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an email address"))
    }
}

fn scope(s: &str) -> Result<ScopePolicy, String> {
    ScopePolicy::from_code(s).ok_or_else(|| format!("{s:?} is not a scope: use team or allocated"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use std::path::Path;

    use crate::auth::hash_secret;
    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::{Accounts, Lifecycle};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("outpost-server").chain(args.iter().copied())).map(|cli| cli.command)
    }

    fn admin(storage: &SqliteStorage, dir: &Path, args: &[&str]) -> Result<String> {
        run(parse(args).unwrap(), storage, &Database::Sqlite(dir.join("server.db")))
    }

    /// The code printed in an `enrol-code` output: the indented line.
    fn printed_code(output: &str) -> &str {
        output
            .lines()
            .find_map(|line| line.strip_prefix("    ").filter(|l| l.len() == 19))
            .unwrap()
    }

    /// A device table row's cells: columns are at least two spaces apart.
    fn cells(line: &str) -> Vec<&str> {
        line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
    }

    #[test]
    fn commands_parse_and_refuse_bad_values() {
        assert_eq!(
            parse(&["create-team", "north", "--name", "North", "--scope", "allocated"]).unwrap(),
            Command::CreateTeam {
                id: TeamId::new("north").unwrap(),
                name: "North".into(),
                scope: ScopePolicy::Allocated,
            }
        );
        assert_eq!(
            parse(&["add-worker", "ann", "--name", "Ann", "--team", "north", "--lead"]).unwrap(),
            Command::AddWorker {
                id: WorkerId::new("ann").unwrap(),
                name: "Ann".into(),
                team: TeamId::new("north").unwrap(),
                lead: true,
            }
        );
        assert_eq!(
            parse(&["enrol-code", "ann"]).unwrap(),
            Command::EnrolCode {
                worker: WorkerId::new("ann").unwrap(),
                valid_hours: 24,
            }
        );
        assert_eq!(parse(&["devices"]).unwrap(), Command::Devices);

        let err = parse(&["create-team", "north", "--name", "North", "--scope", "everyone"]).unwrap_err();
        assert!(err.to_string().contains("team or allocated"), "{err}");
        let err = parse(&["add-worker", "ann/1", "--name", "Ann", "--team", "north"]).unwrap_err();
        assert!(err.to_string().contains("worker id"), "{err}");
        assert!(parse(&["enrol-code", "ann", "--valid-hours", "0"]).is_err());
        assert!(parse(&["enrol-code", "ann", "--valid-hours", "1000"]).is_err());
    }

    #[test]
    fn an_admin_sets_up_a_team_enrols_and_revokes_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("server.db")).unwrap();

        let out = admin(
            &storage,
            dir.path(),
            &["create-team", "north", "--name", "North", "--scope", "team"],
        )
        .unwrap();
        assert_eq!(out, "created team north (North), scope team");
        let out = admin(
            &storage,
            dir.path(),
            &["add-worker", "ann", "--name", "Ann", "--team", "north"],
        )
        .unwrap();
        assert_eq!(out, "added worker ann (Ann) to team north");
        let err = admin(
            &storage,
            dir.path(),
            &["add-worker", "bob", "--name", "Bob", "--team", "south"],
        )
        .unwrap_err();
        assert!(err.to_string().contains("team south"), "{err}");
        assert_eq!(
            admin(&storage, dir.path(), &["devices"]).unwrap(),
            "no devices enrolled"
        );

        let out = admin(&storage, dir.path(), &["enrol-code", "ann", "--valid-hours", "2"]).unwrap();
        assert!(out.contains("CA certificate") && out.contains("address"), "{out}");
        let code = printed_code(&out);
        let now = Utc::now().timestamp();
        let device = DeviceId::new("dev-1").unwrap();
        storage
            .enrol(
                &hash_enrolment_code(code),
                &device,
                "Ann's phone",
                &hash_secret("cred"),
                now,
            )
            .unwrap();

        let table = admin(&storage, dir.path(), &["devices"]).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(
            lines[0].starts_with("device  worker  label        enrolled (UTC)"),
            "{table}"
        );
        assert!(lines[1].starts_with("dev-1   ann     Ann's phone  "), "{table}");
        assert_eq!(cells(lines[1])[4..], ["-", "-"], "{table}");

        let out = admin(&storage, dir.path(), &["revoke", "dev-1"]).unwrap();
        assert!(out.starts_with("revoked device dev-1"), "{out}");
        assert_eq!(storage.authenticate(&hash_secret("cred")).unwrap(), None);
        let table = admin(&storage, dir.path(), &["devices"]).unwrap();
        assert_ne!(cells(table.lines().nth(1).unwrap())[5], "-", "{table}");

        let actions: Vec<String> = storage
            .audit_log(10)
            .unwrap()
            .into_iter()
            .inspect(|e| {
                assert_eq!(e.who, "admin");
                assert!(!e.detail.contains(code), "{e:?}");
            })
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["revoke-device", "issue-enrolment-code", "add-worker", "create-team"]
        );
    }

    #[test]
    fn an_admin_retires_a_device_and_sets_a_team_s_lease() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("server.db")).unwrap();
        admin(
            &storage,
            dir.path(),
            &["create-team", "north", "--name", "North", "--scope", "team"],
        )
        .unwrap();
        admin(
            &storage,
            dir.path(),
            &["add-worker", "ann", "--name", "Ann", "--team", "north"],
        )
        .unwrap();
        let code = new_enrolment_code();
        let ann = WorkerId::new("ann").unwrap();
        storage
            .add_enrolment_code(&ann, &hash_enrolment_code(&code), Utc::now().timestamp() + 60)
            .unwrap();
        let device = DeviceId::new("dev-1").unwrap();
        storage
            .enrol(&hash_enrolment_code(&code), &device, "phone", &hash_secret("cred"), 0)
            .unwrap();

        let out = admin(&storage, dir.path(), &["retire", "dev-1"]).unwrap();
        assert!(out.contains("wipe itself"), "{out}");
        assert!(storage.retiring(&device).unwrap());
        let table = admin(&storage, dir.path(), &["devices"]).unwrap();
        assert!(
            cells(table.lines().nth(1).unwrap())[5].starts_with("retiring since"),
            "{table}"
        );
        let err = admin(&storage, dir.path(), &["retire", "dev-9"]).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");

        let north = TeamId::new("north").unwrap();
        assert_eq!(storage.lease_days(&north).unwrap(), 14);
        let out = admin(&storage, dir.path(), &["set-lease", "north", "--days", "3"]).unwrap();
        assert!(out.contains("after 3 days"), "{out}");
        assert_eq!(storage.lease_days(&north).unwrap(), 3);
        assert!(parse(&["set-lease", "north", "--days", "0"]).is_err());
        assert!(parse(&["set-lease", "north", "--days", "366"]).is_err());
        let err = admin(&storage, dir.path(), &["set-lease", "south", "--days", "3"]).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");

        let actions: Vec<String> = storage.audit_log(2).unwrap().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["set-lease", "retire-device"]);
    }

    #[test]
    fn backup_and_restore_run_from_the_admin_commands() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let copy = dir.path().join("copy.db");
        let storage = SqliteStorage::open(&db).unwrap();
        admin(
            &storage,
            dir.path(),
            &["create-team", "north", "--name", "North", "--scope", "team"],
        )
        .unwrap();
        admin(&storage, dir.path(), &["backup", copy.to_str().unwrap()]).unwrap();
        admin(
            &storage,
            dir.path(),
            &["create-team", "south", "--name", "South", "--scope", "team"],
        )
        .unwrap();
        drop(storage);

        let storage = SqliteStorage::open(&db).unwrap();
        let out = run(
            Command::Restore { backup: copy },
            &storage,
            &Database::Sqlite(db.clone()),
        )
        .unwrap();
        assert!(out.contains("new epoch"), "{out}");
        drop(storage);

        let restored = SqliteStorage::open(&db).unwrap();
        let actions: Vec<String> = restored.audit_log(10).unwrap().into_iter().map(|e| e.action).collect();
        // The backup's own audit entry was written after the copy was taken.
        assert_eq!(actions, ["restore", "create-team"]);
        let out = admin(
            &restored,
            dir.path(),
            &["create-team", "south", "--name", "South", "--scope", "team"],
        )
        .unwrap();
        assert!(out.starts_with("created team south"), "{out}");
    }
}
