//! Where the server keeps its data, chosen by one setting: a SQLite file (the default, no setup)
//! or a PostgreSQL database that several server processes share.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::storage::postgres::PostgresStorage;
use crate::storage::sqlite::SqliteStorage;

#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file on this machine.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string; it may hold a password, so it is never shown.
    Postgres(String),
}

impl Database {
    /// `url` as `OUTPOST_DATABASE_URL` gives it: `postgres://…` or `postgresql://…` for
    /// PostgreSQL, `sqlite:<path>` for a SQLite file; unset, `outpost.sqlite3` in `data_dir`.
    pub fn from_url(url: Option<&str>, data_dir: &Path) -> Result<Self> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::Sqlite(data_dir.join("outpost.sqlite3")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(Self::Sqlite(PathBuf::from(path.trim_start_matches("//"))));
        }
        Err(Error::bad(
            "OUTPOST_DATABASE_URL",
            "use postgres://user@host/database or sqlite:<path>",
        ))
    }

    pub fn open(&self) -> Result<Arc<dyn Storage>> {
        Ok(match self {
            Self::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
                }
                Arc::new(SqliteStorage::open(path)?)
            }
            Self::Postgres(url) => Arc::new(PostgresStorage::open(url)?),
        })
    }

    /// Writes a consistent copy of a SQLite database to `dest`, safe while the server runs.
    pub fn backup(&self, dest: &Path) -> Result<()> {
        SqliteStorage::open(self.sqlite("backup")?)?.backup(dest)
    }

    /// Replaces a SQLite database with a backup; the server must be stopped.
    pub fn restore(&self, backup: &Path) -> Result<()> {
        SqliteStorage::restore(backup, self.sqlite("restore")?)
    }

    /// The SQLite file, for the commands that work on the file itself.
    pub fn sqlite(&self, command: &str) -> Result<&Path> {
        match self {
            Self::Sqlite(path) => Ok(path),
            Self::Postgres(_) => Err(Error::bad(
                command,
                "this server keeps its data in PostgreSQL: use PostgreSQL's own backups (pg_dump, \
                 or continuous archiving) and restore with them",
            )),
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "SQLite at {}", path.display()),
            Self::Postgres(_) => f.write_str("PostgreSQL"),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_names_the_backend() {
        let dir = Path::new("/data");
        assert_eq!(
            Database::from_url(None, dir).unwrap(),
            Database::Sqlite(dir.join("outpost.sqlite3"))
        );
        assert_eq!(
            Database::from_url(Some("sqlite:/srv/o.db"), dir).unwrap(),
            Database::Sqlite("/srv/o.db".into())
        );
        let url = "postgres://outpost:s3cret@db.example/outpost";
        let postgres = Database::from_url(Some(url), dir).unwrap();
        assert_eq!(postgres, Database::Postgres(url.into()));
        assert!(
            !format!("{postgres} {postgres:?}").contains("s3cret"),
            "the password is never shown"
        );
        let err = Database::from_url(Some("mysql://x"), dir).unwrap_err().to_string();
        assert!(err.contains("OUTPOST_DATABASE_URL"), "{err}");
        let err = postgres.backup(Path::new("/tmp/x")).unwrap_err().to_string();
        assert!(err.contains("pg_dump"), "{err}");
    }
}
