//! Serves Outpost sync over TLS, or runs one admin command against the same database.
//!
//! OUTPOST_ADDR       where to listen with TLS (default 127.0.0.1:8443)
//! OUTPOST_DATA_DIR   the server's data (default ./outpost-data)
//! OUTPOST_DATABASE_URL
//!                    where records are kept: postgres://user@host/db for PostgreSQL, which several
//!                    server processes can share, or sqlite:<path>; default a SQLite file,
//!                    OUTPOST_DATA_DIR/outpost.sqlite3
//! OUTPOST_TLS_CERT, OUTPOST_TLS_KEY
//!                    a PEM certificate chain and key; without them a development certificate is
//!                    made in OUTPOST_DATA_DIR/tls (trust its ca.pem on the client)
//! OUTPOST_PLAIN_ADDR serve plain HTTP here instead, behind a load balancer that terminates TLS
//! OUTPOST_TRUSTED_PROXIES
//!                    comma-separated proxy addresses whose X-Forwarded-For is believed
//! OUTPOST_LOG_FORMAT json for one JSON object per log line; RUST_LOG sets the level
//! OUTPOST_PUBLIC_URL the review pages' public address, for links in safeguarding alerts
//! OUTPOST_SMTP_HOST, OUTPOST_SMTP_PORT (25), OUTPOST_SMTP_FROM, OUTPOST_SMTP_USER,
//! OUTPOST_SMTP_PASSWORD, OUTPOST_SMTP_TLS (none | starttls | tls; default starttls)
//!                    where safeguarding alerts are emailed (to each lead's `set-email` address)
//! OUTPOST_WEBHOOK_URL, OUTPOST_WEBHOOK_SECRET
//!                    a webhook told of each safeguarding alert, signed with HMAC-SHA256
//! OUTPOST_SIGNING_KEY the server's Ed25519 key (PKCS#8), made there if absent; keep it outside
//!                    the database (default OUTPOST_DATA_DIR/signing.key). It also signs devices'
//!                    offline leases, and devices pin it: back it up, since with another key every
//!                    device refuses its leases and locks once its lease runs out
//! OUTPOST_AUDIT_CHECKPOINT_EVERY, OUTPOST_AUDIT_CHECKPOINT_MINUTES
//!                    sign an audit checkpoint every N entries (1000), and once the oldest
//!                    unsigned entry is this many minutes old (60)
//! OUTPOST_AUDIT_RETENTION_DAYS
//!                    the serving process removes audit segments older than this (default: keep all)
//! OUTPOST_SYNC_RATE, OUTPOST_ENROL_RATE
//!                    rate limits as <burst>/<per second>, or off: syncs per device (60/2) and
//!                    enrolment attempts per client address (20/0.1667, one every 6 s); over
//!                    them is a 429 with Retry-After

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use clap::{Parser, Subcommand, ValueEnum};
use outpost_core::{DocId, ReviewAction, WorkerId};
use outpost_server::audit::AuditSettings;
use outpost_server::database::Database;
use outpost_server::storage::Storage;
use outpost_server::{AppState, admin, audit, review, tls};

#[derive(Debug, Parser)]
#[command(
    name = "outpost-server",
    version,
    about = "Outpost's sync server and its admin commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve sync (the default).
    Serve,
    /// Approve a visit, or return it with a comment, as a team lead.
    Review {
        #[arg(value_enum)]
        decision: Decision,
        visit: String,
        #[arg(long)]
        lead: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Remove a passage from a visit section, as a team lead, from every copy (history
    /// included): the server's at once, each device's at its next sync. The passage must occur
    /// in the section exactly once. Audited with the reason, never the text.
    Redact {
        visit: String,
        /// The section: what_matters, strengths, support_network, goals, risks_and_concerns
        /// or community_connections.
        #[arg(long)]
        section: String,
        /// The exact text to remove.
        #[arg(long)]
        passage: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        lead: String,
    },
    /// Merge two records made for the same person, as a team lead: the duplicate's records move
    /// to the survivor on the server now and on each device at its next sync, and what the
    /// duplicate's record holds is kept on the survivor's. Running it again finishes a merge
    /// that was interrupted.
    MergePeople {
        #[arg(long)]
        survivor: String,
        #[arg(long)]
        duplicate: String,
        #[arg(long)]
        lead: String,
    },
    /// The audit trail: verify it, sign a checkpoint, read it by record or user, export it,
    /// remove old segments.
    Audit {
        #[command(subcommand)]
        command: audit::cli::Command,
    },
    #[command(flatten)]
    Admin(admin::Command),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Decision {
    Approve,
    Return,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // tokio-postgres logs each statement's parameters at debug level: record content.
        .add_directive("tokio_postgres=warn".parse().expect("a valid log directive"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // One JSON object a line for a log collector; readable text otherwise.
    if std::env::var("OUTPOST_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    let data_dir = PathBuf::from(std::env::var("OUTPOST_DATA_DIR").unwrap_or_else(|_| "outpost-data".into()));
    let result = Database::from_url(std::env::var("OUTPOST_DATABASE_URL").ok().as_deref(), &data_dir)
        .map_err(|e| e.to_string())
        .and_then(|database| run(cli.command.unwrap_or(Command::Serve), &data_dir, &database));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("outpost-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, data_dir: &Path, database: &Database) -> Result<(), String> {
    match command {
        Command::Serve => tokio::runtime::Runtime::new()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(serve(data_dir, database))),
        Command::Review {
            decision,
            visit,
            lead,
            comment,
        } => run_review(data_dir, database, decision, &visit, &lead, comment.as_deref()),
        Command::Redact {
            visit,
            section,
            passage,
            reason,
            lead,
        } => {
            let storage = open(database)?;
            let service =
                outpost_server::sync::SyncService::new(storage, Default::default()).map_err(|e| e.to_string())?;
            let visit = DocId::new(visit).map_err(|e| e.to_string())?;
            let lead = WorkerId::new(lead).map_err(|e| e.to_string())?;
            outpost_server::redaction::redact_passage(&service, &lead, &visit, &section, &passage, &reason, "")
                .map_err(|e| e.to_string())?;
            println!("removed the passage from visit {visit}; devices replace their copies at their next sync");
            seal_due(data_dir, service.storage().as_ref());
            Ok(())
        }
        Command::MergePeople {
            survivor,
            duplicate,
            lead,
        } => {
            let storage = open(database)?;
            let service =
                outpost_server::sync::SyncService::new(storage, Default::default()).map_err(|e| e.to_string())?;
            let survivor = DocId::new(survivor).map_err(|e| e.to_string())?;
            let duplicate = DocId::new(duplicate).map_err(|e| e.to_string())?;
            let lead = WorkerId::new(lead).map_err(|e| e.to_string())?;
            let merged = outpost_server::duplicates::merge_people(&service, &lead, &survivor, &duplicate, "")
                .map_err(|e| e.to_string())?;
            println!(
                "merged {duplicate} into {survivor}: {} records moved; devices follow at their next sync",
                merged.moved.len()
            );
            seal_due(data_dir, service.storage().as_ref());
            Ok(())
        }
        Command::Audit { command } => run_audit(data_dir, database, command),
        Command::Admin(admin::Command::Restore { backup }) => {
            // Restore works on the file itself, with no connection open.
            database.restore(&backup).map_err(|e| e.to_string())?;
            println!(
                "restored {}; devices re-sync on their next connection",
                backup.display()
            );
            Ok(())
        }
        Command::Admin(admin::Command::SetPassword { lead, .. }) => {
            let password = read_password()?;
            run_admin(data_dir, database, admin::Command::SetPassword { lead, password })
        }
        Command::Admin(command) => run_admin(data_dir, database, command),
    }
}

fn run_admin(data_dir: &Path, database: &Database, command: admin::Command) -> Result<(), String> {
    let storage = open(database)?;
    let text = admin::run(command, storage.as_ref(), database).map_err(|e| e.to_string())?;
    println!("{text}");
    seal_due(data_dir, storage.as_ref());
    Ok(())
}

/// A password from standard input: its first line, without the line ending.
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn open(database: &Database) -> Result<Arc<dyn Storage>, String> {
    database.open().map_err(|e| format!("opening {database}: {e}"))
}

fn run_review(
    data_dir: &Path,
    database: &Database,
    decision: Decision,
    visit: &str,
    lead: &str,
    comment: Option<&str>,
) -> Result<(), String> {
    let storage = open(database)?;
    let service = outpost_server::sync::SyncService::new(storage, Default::default()).map_err(|e| e.to_string())?;
    let visit = DocId::new(visit).map_err(|e| e.to_string())?;
    let lead = WorkerId::new(lead).map_err(|e| e.to_string())?;
    let action = match decision {
        Decision::Approve => ReviewAction::Approve,
        Decision::Return => ReviewAction::Return,
    };
    let state = review::decide(&service, &lead, &visit, action, comment, None, "").map_err(|e| e.to_string())?;
    println!("visit {visit} is now {}", state.code());
    seal_due(data_dir, service.storage().as_ref());
    Ok(())
}

fn run_audit(data_dir: &Path, database: &Database, command: audit::cli::Command) -> Result<(), String> {
    let settings = AuditSettings::from_env(data_dir)?;
    let storage = open(database)?;
    let verifying = matches!(command, audit::cli::Command::Verify { .. });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let broken = audit::cli::run(command, storage.as_ref(), &settings, &mut out).map_err(|e| e.to_string())?;
    std::io::Write::flush(&mut out).map_err(|e| format!("writing the output: {e}"))?;
    drop(out);
    if let Some(broken) = broken {
        return Err(format!("the audit trail is broken at {broken}"));
    }
    // Verifying only reads; every other audit command appended an entry.
    if !verifying {
        seal_due(data_dir, storage.as_ref());
    }
    Ok(())
}

/// Signs the audit checkpoints a command's entries made due. A failure fails nothing: the
/// command's work is done, and the next command or the serving process signs them.
fn seal_due<T: outpost_server::storage::AuditTrail + ?Sized>(data_dir: &Path, storage: &T) {
    let now = chrono::Utc::now().timestamp();
    let sealed = AuditSettings::from_env(data_dir).and_then(|settings| {
        if audit::due(storage, &settings, now)
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            return Ok(());
        }
        let key = settings.load_key().map_err(|e| e.to_string())?;
        audit::seal(storage, &key, &settings, now)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    if let Err(error) = sealed {
        eprintln!("outpost-server: warning: audit checkpoints were not signed: {error}");
    }
}

async fn serve(data_dir: &Path, database: &Database) -> Result<(), String> {
    let storage = open(database)?;
    tracing::info!(%database, "records kept");
    if storage.devices().map_err(|e| e.to_string())?.is_empty() {
        println!(
            "no devices are enrolled yet. To enrol a first one:\n  \
             outpost-server create-team north --name \"North locality\" --scope team\n  \
             outpost-server add-worker ann --name \"Ann Hale\" --team north\n  \
             outpost-server enrol-code ann\n\
             then give the phone the server address, the CA file below and the code."
        );
    }
    let alerts = outpost_server::alerts::Alerts::new(outpost_server::alerts::AlertConfig::from_env()?);
    // Debug hides the SMTP password, the webhook's secret and its path.
    tracing::info!(?alerts, "safeguarding alerts");
    // One key signs audit checkpoints and devices' offline leases; devices pin it at enrolment,
    // so it must outlive the process (it is kept in its file).
    let audit_settings = AuditSettings::from_env(data_dir)?;
    let key = Arc::new(audit_settings.load_key().map_err(|e| e.to_string())?);
    tracing::info!(
        key = %audit::key_id(key.public_key()),
        "audit checkpoints and device leases signed with this key"
    );
    let mut state = AppState::with_key(storage.clone(), alerts, key.clone()).map_err(|e| e.to_string())?;
    state.limits = Arc::new(outpost_server::limits::RateLimits::from_env()?);
    tracing::info!(limits = ?state.limits, "rate limits");
    audit::spawn_sealer(storage, key, audit_settings, Duration::from_secs(15));
    let handle = Handle::new();
    tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown_signal().await;
            // Requests in flight get a moment to finish; new connections are refused at once.
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        }
    });

    if let Ok(plain) = std::env::var("OUTPOST_PLAIN_ADDR") {
        let addr: SocketAddr = plain
            .parse()
            .map_err(|e| format!("OUTPOST_PLAIN_ADDR {plain:?}: {e}"))?;
        let trusted = trusted_proxies()?;
        let listener = TcpListener::bind(addr).map_err(|e| format!("listening on {addr}: {e}"))?;
        println!("outpost-server listening on http://{addr} (TLS terminated by a proxy)");
        return outpost_server::serve_plain(listener, state, trusted, handle)
            .await
            .map_err(|e| e.to_string());
    }

    let addr: SocketAddr = match std::env::var("OUTPOST_ADDR") {
        Ok(value) => value.parse().map_err(|e| format!("OUTPOST_ADDR {value:?}: {e}"))?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 8443)),
    };
    let (cert, key) = match (std::env::var("OUTPOST_TLS_CERT"), std::env::var("OUTPOST_TLS_KEY")) {
        (Ok(cert), Ok(key)) => (PathBuf::from(cert), PathBuf::from(key)),
        (Err(_), Err(_)) => {
            let dev = tls::dev_certificate(&data_dir.join("tls")).map_err(|e| e.to_string())?;
            println!("development certificate: clients trust {}", dev.ca.display());
            (dev.cert, dev.key)
        }
        _ => return Err("set both OUTPOST_TLS_CERT and OUTPOST_TLS_KEY, or neither".into()),
    };
    let config = tls::server_config(&cert, &key).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(addr).map_err(|e| format!("listening on {addr}: {e}"))?;
    println!(
        "outpost-server listening on https://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    outpost_server::serve_tls(listener, config, state, handle)
        .await
        .map_err(|e| e.to_string())
}

fn trusted_proxies() -> Result<Vec<IpAddr>, String> {
    match std::env::var("OUTPOST_TRUSTED_PROXIES") {
        Ok(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|e| format!("OUTPOST_TRUSTED_PROXIES {s:?}: {e}"))
            })
            .collect(),
        Err(_) => Ok(Vec::new()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
