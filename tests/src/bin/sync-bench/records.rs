//! Where one run's server keeps its records: a SQLite file in its data directory, or a
//! PostgreSQL schema of the run's own, created for the run and dropped after it, so nothing is
//! cached in PostgreSQL between runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use outpost_server::database::Database;
use outpost_server::storage::Storage;

use crate::setup::Result;

#[derive(Debug)]
pub struct Records {
    /// The server processes' `OUTPOST_DATA_DIR`: TLS certificate, signing key, SQLite file.
    pub data_dir: PathBuf,
    /// Their `OUTPOST_DATABASE_URL`; None for SQLite in `data_dir`.
    pub url: Option<String>,
    /// Held for its drop, which drops the schema.
    _schema: Option<Schema>,
}

impl Records {
    /// SQLite at `data_dir/outpost.sqlite3`, or, given a PostgreSQL URL, a new schema in that
    /// database named after this process and `tag`.
    pub fn create(data_dir: &Path, postgres: Option<&str>, tag: &str) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let Some(base) = postgres else {
            return Ok(Self {
                data_dir: data_dir.to_path_buf(),
                url: None,
                _schema: None,
            });
        };
        if !(base.starts_with("postgres://") || base.starts_with("postgresql://")) {
            return Err(format!("--database-url: {base:?} is not a postgres:// URL").into());
        }
        let name = format!("outpost_bench_{}_{tag}", std::process::id());
        let schema = Schema {
            base: base.to_string(),
            name: name.clone(),
        };
        schema.execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))?;
        let separator = if base.contains('?') { '&' } else { '?' };
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            url: Some(format!("{base}{separator}options=-c%20search_path%3D{name}")),
            _schema: Some(schema),
        })
    }

    /// Opens the records as the server binary does (and migrates them).
    pub fn open(&self) -> Result<Arc<dyn Storage>> {
        Ok(Database::from_url(self.url.as_deref(), &self.data_dir)?.open()?)
    }

    /// "SQLite" or "PostgreSQL", for the tables.
    pub fn backend(&self) -> &'static str {
        if self.url.is_some() { "PostgreSQL" } else { "SQLite" }
    }
}

/// A PostgreSQL schema, dropped with everything in it when this is.
#[derive(Debug)]
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// Runs `sql` on a connection of its own, on a thread of its own: callers may be on an async
    /// thread, which cannot block on another runtime.
    fn execute(&self, sql: &str) -> Result<()> {
        let (base, sql) = (self.base.clone(), sql.to_string());
        let done = std::thread::spawn(move || -> std::result::Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        });
        done.join().map_err(|_| "the PostgreSQL thread panicked")??;
        Ok(())
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(e) = self.execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)) {
            eprintln!("warning: PostgreSQL schema {} was not dropped: {e}", self.name);
        }
    }
}
