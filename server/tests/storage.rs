//! The server storage's behaviour, written once and run against every backend: SQLite (a file
//! in a temporary directory) and PostgreSQL (a schema of its own in the database at
//! `OUTPOST_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL
//! test fails, never skips, when the database cannot be reached.

use std::ops::Deref;

use outpost_server::storage::Storage;
use outpost_server::storage::postgres::PostgresStorage;
use outpost_server::storage::sqlite::SqliteStorage;

/// Writes a test once and runs it on every backend: for each `name`, `fn name(&Backend)` in the
/// invoking module becomes `sqlite::name` and `postgres::name`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$test(&$crate::Backend::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::$test(&$crate::Backend::postgres());
            })*
        }
    };
}

// After the macro, so each module can use it.
#[path = "storage/accounts.rs"]
mod accounts;
#[path = "storage/audit.rs"]
mod audit;
#[path = "storage/documents.rs"]
mod documents;
#[path = "storage/duplicates.rs"]
mod duplicates;
#[path = "storage/erasure.rs"]
mod erasure;
#[path = "storage/leases.rs"]
mod leases;
#[path = "storage/redaction.rs"]
mod redaction;
#[path = "storage/review.rs"]
mod review;
#[path = "storage/web.rs"]
mod web;

/// A fresh, empty storage of one kind, removed when dropped.
#[derive(Debug)]
pub enum Backend {
    Sqlite {
        storage: Box<SqliteStorage>,
        _dir: tempfile::TempDir,
    },
    Postgres {
        storage: Option<Box<PostgresStorage>>,
        schema: String,
    },
}

impl Backend {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(dir.path().join("server.db")).expect("a SQLite storage");
        Self::Sqlite {
            storage: Box::new(storage),
            _dir: dir,
        }
    }

    pub fn postgres() -> Self {
        let schema = format!("outpost_test_{}", uuid::Uuid::new_v4().simple());
        let storage = PostgresStorage::open_in_schema(&postgres_url(), &schema).unwrap_or_else(|e| {
            panic!("PostgreSQL is needed for this test (set OUTPOST_TEST_POSTGRES to reach it): {e}")
        });
        Self::Postgres {
            storage: Some(Box::new(storage)),
            schema,
        }
    }

    /// Another storage over the same data, as a second server process would open it.
    pub fn reopen(&self) -> Box<dyn Storage> {
        match self {
            Self::Sqlite { _dir, .. } => {
                Box::new(SqliteStorage::open(_dir.path().join("server.db")).expect("the SQLite storage again"))
            }
            Self::Postgres { schema, .. } => Box::new(
                PostgresStorage::open_in_schema(&postgres_url(), schema).expect("the PostgreSQL storage again"),
            ),
        }
    }
}

impl Deref for Backend {
    type Target = dyn Storage;

    fn deref(&self) -> &(dyn Storage + 'static) {
        match self {
            Self::Sqlite { storage, .. } => storage.as_ref(),
            Self::Postgres { storage, .. } => storage.as_deref().expect("present until dropped"),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Self::Postgres { storage, schema } = self {
            drop(storage.take());
            drop_schema(schema);
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var("OUTPOST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Called from `Drop` in the tests' own (synchronous) threads.
fn drop_schema(schema: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let Ok((client, connection)) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await else {
            return;
        };
        tokio::spawn(connection);
        // Best effort: a schema left behind holds only test data.
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    });
}
