//! `outpost-server audit ...`: verify the trail, sign a checkpoint, read it by record or by
//! user, export it as JSON lines, remove old segments. Reading the trail is itself audited.

use std::io::Write;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{ArgGroup, Subcommand};
use serde_json::json;

use super::{AuditSettings, Broken, key_id, verify};
use crate::error::{Error, Result};
use crate::signing::hex;
use crate::storage::{AuditEntry, AuditFilter, ChainedEntry, Storage};

/// Entries written to an export at a time.
const EXPORT_PAGE: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Check the whole trail: every entry chains from the one before and every checkpoint is
    /// signed by the server's key. Names the first broken seq and fails if there is one.
    Verify {
        /// The server's Ed25519 public key in hex (as `audit checkpoint` prints it), to verify
        /// without the key file; repeat it for a key used before a rotation.
        #[arg(long = "public-key", value_parser = public_key)]
        public_keys: Vec<PublicKey>,
    },
    /// Sign a checkpoint at the newest entry now.
    Checkpoint,
    /// Entries about one record, or by one user (a worker, a lead, "admin"), newest first.
    #[command(group(ArgGroup::new("by").required(true).args(["record", "user"])))]
    Log {
        #[arg(long)]
        record: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Every entry as JSON lines on standard output, each with its hashes.
    Export {
        /// Only entries from this time on: a date (2026-01-31), an RFC 3339 time or unix seconds.
        #[arg(long, value_parser = since)]
        since: Option<i64>,
    },
    /// Remove whole segments (entries up to a signed checkpoint) older than this many days;
    /// the checkpoint stays as the anchor the rest is verified from.
    Retain {
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
    },
}

/// An Ed25519 public key given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(pub Vec<u8>);

/// Runs one audit command, writing what it prints to `out`. A broken trail is returned (after
/// its report is written) for the caller to fail with.
pub fn run<T: Storage + ?Sized>(
    command: Command,
    storage: &T,
    settings: &AuditSettings,
    out: &mut dyn Write,
) -> Result<Option<Broken>> {
    let now = Utc::now().timestamp();
    let audit = |action: &str, subject: &str, detail: String| {
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
        Command::Verify { public_keys } => {
            let trusted: Vec<Vec<u8>> = if public_keys.is_empty() {
                settings.trusted_keys()?
            } else {
                public_keys.into_iter().map(|k| k.0).collect()
            };
            let verified = verify(storage, &trusted)?;
            let keys: Vec<String> = trusted.iter().map(|k| key_id(k)).collect();
            write(out, &format!("{verified}\nchecked against key {}", keys.join(", ")))?;
            Ok(verified.broken)
        }
        Command::Checkpoint => {
            // Audited first, so the checkpoint covers its own entry.
            audit("audit-checkpoint", "audit", String::new())?;
            let key = settings.load_key()?;
            let checkpoint = storage.add_checkpoint(None, now, &key)?;
            write(
                out,
                &format!(
                    "signed a checkpoint at seq {} (hash {}) with key {}\npublic key: {}",
                    checkpoint.seq,
                    hex(&checkpoint.hash),
                    key_id(&checkpoint.public_key),
                    hex(&checkpoint.public_key)
                ),
            )?;
            Ok(None)
        }
        Command::Log { record, user, limit } => {
            let (subject, by) = match (&record, &user) {
                (Some(record), _) => (record.clone(), "by record"),
                (None, Some(user)) => (user.clone(), "by user"),
                (None, None) => return Err(Error::bad("audit log", "name a --record or a --user")),
            };
            let filter = AuditFilter {
                record,
                user,
                since: None,
            };
            let entries = storage.audit_latest(&filter, limit)?;
            // Who looked up whom is itself worth knowing.
            audit("audit-query", &subject, format!("{by}, {} entries", entries.len()))?;
            write(out, &entry_table(&entries))?;
            Ok(None)
        }
        Command::Export { since } => {
            let filter = AuditFilter {
                since,
                ..AuditFilter::default()
            };
            let mut after = 0;
            let mut exported = 0;
            loop {
                let page = storage.audit_entries(&filter, after, EXPORT_PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for entry in &page {
                    write(out, &json_line(entry))?;
                }
                exported += page.len();
            }
            let detail = match since {
                Some(since) => format!("{exported} entries since {}", time(since)),
                None => format!("{exported} entries"),
            };
            audit("audit-export", "audit", detail)?;
            Ok(None)
        }
        Command::Retain { days } => {
            let key = settings.load_key()?;
            let removed = super::retain(storage, &[key.public_key().to_vec()], days, now)?;
            let detail = match removed {
                Some(through) => format!("entries through seq {through}, older than {days} days"),
                None => format!("nothing older than {days} days to remove"),
            };
            audit("audit-retain", "audit", detail)?;
            write(
                out,
                &match removed {
                    Some(through) => {
                        format!("removed audit entries through seq {through}; the checkpoint there anchors the rest")
                    }
                    None => format!("no whole segment is older than {days} days; nothing was removed"),
                },
            )?;
            Ok(None)
        }
    }
}

/// One entry as a JSON object, as `audit export` writes it.
pub fn json_line(entry: &ChainedEntry) -> String {
    json!({
        "seq": entry.seq,
        "at": entry.entry.at,
        "time": DateTime::<Utc>::from_timestamp(entry.entry.at, 0).map(|t| t.to_rfc3339()),
        "who": entry.entry.who,
        "action": entry.entry.action,
        "subject": entry.entry.subject,
        "detail": entry.entry.detail,
        "from": entry.entry.from,
        "prev_hash": hex(&entry.prev_hash),
        "hash": hex(&entry.hash),
    })
    .to_string()
}

fn entry_table(entries: &[ChainedEntry]) -> String {
    if entries.is_empty() {
        return "no audit entries match".into();
    }
    let mut rows = vec![["seq", "time (UTC)", "who", "action", "subject", "from", "detail"].map(String::from)];
    rows.extend(entries.iter().map(|e| {
        [
            e.seq.to_string(),
            time(e.entry.at),
            e.entry.who.clone(),
            e.entry.action.clone(),
            e.entry.subject.clone(),
            if e.entry.from.is_empty() {
                "-".into()
            } else {
                e.entry.from.clone()
            },
            e.entry.detail.clone(),
        ]
    }));
    let mut widths = [0; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write(out: &mut dyn Write, text: &str) -> Result<()> {
    writeln!(out, "{text}").map_err(|e| Error::Internal(format!("writing the output: {e}")))
}

fn time(at: i64) -> String {
    DateTime::<Utc>::from_timestamp(at, 0).map_or_else(|| at.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn public_key(s: &str) -> Result<PublicKey, String> {
    let s = s.trim();
    let bytes: Option<Vec<u8>> = (s.len() == 64 && s.is_ascii())
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
    bytes
        .map(PublicKey)
        .ok_or_else(|| format!("{s:?} is not an Ed25519 public key (64 hex digits)"))
}

fn since(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(seconds) = s.parse::<i64>() {
        return Ok(seconds);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(s) {
        return Ok(time.timestamp());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| format!("{s:?} is not a date (2026-01-31), an RFC 3339 time or unix seconds"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::{Accounts, AuditTrail};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("audit").chain(args.iter().copied())).map(|cli| cli.command)
    }

    fn run_to_text(command: Command, storage: &SqliteStorage, settings: &AuditSettings) -> String {
        let mut out = Vec::new();
        assert_eq!(run(command, storage, settings, &mut out).unwrap(), None);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reading_the_trail_is_audited_and_the_export_carries_the_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("server.db")).unwrap();
        let settings = AuditSettings::new(dir.path());
        for (at, who, subject) in [(100, "ann/dev-1", "visit-1"), (200, "admin", "ann")] {
            storage
                .audit(&AuditEntry {
                    at,
                    who: who.into(),
                    action: "push".into(),
                    subject: subject.into(),
                    detail: String::new(),
                    from: "198.51.100.4".into(),
                })
                .unwrap();
        }
        let export = run_to_text(Command::Export { since: Some(150) }, &storage, &settings);
        let lines: Vec<serde_json::Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "{export}");
        assert_eq!(lines[0]["seq"], 2);
        assert_eq!(lines[0]["from"], "198.51.100.4");
        assert_eq!(lines[0]["time"], "1970-01-01T00:03:20+00:00");
        let stored = storage.audit_entries(&AuditFilter::default(), 1, 1).unwrap();
        assert_eq!(lines[0]["hash"], hex(&stored[0].hash));
        assert_eq!(lines[0]["prev_hash"], hex(&stored[0].prev_hash));

        let log = Command::Log {
            record: Some("visit-1".into()),
            user: None,
            limit: 10,
        };
        let table = run_to_text(log, &storage, &settings);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(table.lines().nth(1).unwrap().contains("ann/dev-1"), "{table}");
        let audited: Vec<(String, String, String)> = storage
            .audit_log(2)
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.subject, e.detail))
            .collect();
        assert_eq!(
            audited,
            [
                ("audit-query".into(), "visit-1".into(), "by record, 1 entries".into()),
                (
                    "audit-export".into(),
                    "audit".into(),
                    "1 entries since 1970-01-01 00:02:30".into()
                ),
            ]
        );

        // Verifying needs the key file, and never makes one.
        let mut out = Vec::new();
        let err = run(Command::Verify { public_keys: vec![] }, &storage, &settings, &mut out).unwrap_err();
        assert!(err.to_string().contains("no signing key"), "{err}");
        assert!(!settings.key_path.exists());
        let signed = run_to_text(Command::Checkpoint, &storage, &settings);
        assert!(signed.contains("signed a checkpoint at seq 5"), "{signed}");
        let verified = run_to_text(Command::Verify { public_keys: vec![] }, &storage, &settings);
        assert!(verified.contains("intact: entries 1 to 5"), "{verified}");
        // The look-ups and the checkpoint were audited just now: their segment is not old.
        let retained = run_to_text(Command::Retain { days: 1 }, &storage, &settings);
        assert!(retained.contains("nothing was removed"), "{retained}");
        assert_eq!(storage.audit_log(1).unwrap()[0].action, "audit-retain");
    }

    #[test]
    fn commands_parse_and_refuse_bad_values() {
        assert_eq!(
            parse(&["log", "--user", "ann", "--limit", "5"]).unwrap(),
            Command::Log {
                record: None,
                user: Some("ann".into()),
                limit: 5
            }
        );
        assert!(parse(&["log"]).is_err(), "a record or a user is needed");
        assert!(parse(&["log", "--user", "ann", "--record", "v1"]).is_err());
        assert_eq!(
            parse(&["export", "--since", "2026-01-31"]).unwrap(),
            Command::Export {
                since: Some(1_769_817_600)
            }
        );
        assert_eq!(
            parse(&["export", "--since", "2026-01-31T01:00:00+01:00"]).unwrap(),
            Command::Export {
                since: Some(1_769_817_600)
            }
        );
        assert!(parse(&["export", "--since", "last tuesday"]).is_err());
        assert!(parse(&["retain", "--days", "0"]).is_err());
        let key = "ab".repeat(32);
        assert_eq!(
            parse(&["verify", "--public-key", &key]).unwrap(),
            Command::Verify {
                public_keys: vec![PublicKey(vec![0xab; 32])]
            }
        );
        let err = parse(&["verify", "--public-key", "abcd"]).unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }
}
