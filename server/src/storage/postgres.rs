//! PostgreSQL, for deployments that outgrow one machine: several stateless server processes
//! over one database. The same traits as the SQLite default, passing the same shared test suite
//! (server/tests/storage.rs).
//!
//! The storage methods are blocking, like SQLite's. Each borrows a client from a small pool and
//! drives its queries with `block_on`; the clients' connections (their sockets) run on a tokio
//! runtime the storage owns. So a method may be called from any thread, an async one included,
//! without nesting runtimes. Each connection prepares a statement once and keeps it
//! (`Statements`): a query is then one round trip, and PostgreSQL plans it once.
//!
//! Where SQLite's single write lock orders things, PostgreSQL takes a transaction-scoped
//! advisory lock (`Lock`): every process appends to the sync log and to the audit chain in turn,
//! so log sequence numbers become visible in order and the chain has no forks.

mod accounts;
mod audit;
mod documents;
mod duplicates;
mod erasure;
mod forget;
mod leases;
mod review;
mod schema;
mod web;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, GenericClient, IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::error::{Error, Result};

/// Connections one process keeps open at most; requests past it wait for one.
const MAX_CONNECTIONS: usize = 32;
/// How long a request waits for a free connection before it is an error.
const CONNECTION_WAIT: Duration = Duration::from_secs(30);
/// Statements one connection keeps prepared at most; past it they are all closed and prepared
/// again as used (a bound, should some query's text vary without end).
const MAX_STATEMENTS: usize = 256;

/// Transaction-scoped advisory locks (`pg_advisory_xact_lock`), taken in this order when a
/// transaction needs more than one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// Held while schema migrations run (a session lock, see `schema::migrate`).
    Migrate,
    /// Held by every transaction that appends to the sync log.
    Log,
    /// Held by every transaction that appends to the audit chain.
    Audit,
}

impl Lock {
    /// The lock's key: "outp" and a number, unlikely to meet another application's.
    pub(crate) fn key(self) -> i64 {
        0x6f75_7470_0000
            + match self {
                Self::Migrate => 1,
                Self::Log => 2,
                Self::Audit => 3,
            }
    }

    /// Waits for the lock; it is released when the transaction ends.
    pub(crate) async fn take(self, tx: &Tx<'_>) -> Result<()> {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.key()]).await?;
        Ok(())
    }
}

pub struct PostgresStorage {
    config: Config,
    /// Drives the connections; shut down without blocking when the storage is dropped, which
    /// may happen on an async thread.
    runtime: Option<tokio::runtime::Runtime>,
    idle: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Default)]
struct Pool {
    clients: Vec<Conn>,
    open: usize,
    /// Tickets of the callers waiting for a client, first come first served.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: Statements,
}

impl PostgresStorage {
    /// Connects with a PostgreSQL connection string (`postgres://user@host/db` or
    /// `host=... dbname=...`) and brings the schema up to date.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_config(parse(url)?, schema::MIGRATIONS)
    }

    /// The same, keeping every table in `schema` (created if absent), so one database can hold
    /// several Outpost servers' data; the tests give each test its own.
    pub fn open_in_schema(url: &str, schema: &str) -> Result<Self> {
        Self::open_in_schema_at(url, schema, schema::MIGRATIONS)
    }

    /// `open_in_schema`, migrating to `migrations` (the tests' newer and older servers).
    fn open_in_schema_at(url: &str, schema: &str, migrations: &[schema::Migration]) -> Result<Self> {
        let named = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !named {
            return Err(Error::bad(
                "schema name",
                "use 1 to 63 lowercase letters, digits and underscores",
            ));
        }
        let mut config = parse(url)?;
        let storage = Self::unmigrated(config.clone())?;
        let client = storage.client()?;
        storage.block_on(client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")))?;
        drop(client);
        drop(storage);
        config.options(format!("-c search_path={schema}"));
        Self::open_config(config, migrations)
    }

    fn open_config(config: Config, migrations: &[schema::Migration]) -> Result<Self> {
        let storage = Self::unmigrated(config)?;
        schema::migrate(&storage, migrations)?;
        Ok(storage)
    }

    fn unmigrated(config: Config) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("outpost-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("could not start the PostgreSQL runtime: {e}")))?;
        Ok(Self {
            config,
            runtime: Some(runtime),
            idle: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        })
    }

    /// Runs `future` (queries on a client from `client()`) to completion on this thread.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        futures_executor::block_on(future)
    }

    /// A client from the pool, connecting a new one while fewer than `MAX_CONNECTIONS` are
    /// open; it goes back to the pool when dropped. Callers are served in the order they asked,
    /// so under load none waits for ever while later ones are served.
    pub(crate) fn client(&self) -> Result<Pooled<'_>> {
        let mut pool = self.pool()?;
        let ticket = pool.next_ticket;
        pool.next_ticket += 1;
        pool.waiting.push_back(ticket);
        let deadline = Instant::now() + CONNECTION_WAIT;
        loop {
            if pool.waiting.front() == Some(&ticket) {
                if let Some(conn) = pool.clients.pop() {
                    if conn.client.is_closed() {
                        pool.open -= 1;
                        continue;
                    }
                    self.served(&mut pool);
                    return Ok(Pooled {
                        conn: Some(conn),
                        storage: self,
                    });
                }
                if pool.open < MAX_CONNECTIONS {
                    pool.open += 1;
                    self.served(&mut pool);
                    drop(pool);
                    return match self.connect() {
                        Ok(client) => Ok(Pooled {
                            conn: Some(Conn {
                                client,
                                statements: Statements::default(),
                            }),
                            storage: self,
                        }),
                        Err(e) => {
                            self.pool()?.open -= 1;
                            self.returned.notify_all();
                            Err(e)
                        }
                    };
                }
            }
            let now = Instant::now();
            if now >= deadline {
                pool.waiting.retain(|t| *t != ticket);
                self.returned.notify_all();
                return Err(Error::Internal(format!(
                    "no PostgreSQL connection came free within {} s",
                    CONNECTION_WAIT.as_secs()
                )));
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// The caller at the head of the queue has its client: the next one may be served.
    fn served(&self, pool: &mut Pool) {
        pool.waiting.pop_front();
        self.returned.notify_all();
    }

    fn connect(&self) -> Result<Client> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Internal("the storage is closing".into()))?;
        let config = self.config.clone();
        // The connection's socket lives on our runtime; its client can be driven from anywhere.
        let connecting = runtime.spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "a PostgreSQL connection ended");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = self
            .block_on(connecting)
            .map_err(|e| Error::Internal(format!("connecting to PostgreSQL did not finish: {e}")))?
            .map_err(|e| Error::Internal(format!("could not connect to PostgreSQL: {e}")))?;
        Ok(client)
    }

    fn pool(&self) -> Result<MutexGuard<'_, Pool>> {
        self.idle.lock().map_err(|_| poisoned())
    }
}

fn parse(url: &str) -> Result<Config> {
    // The parser's message never repeats the string, which may hold a password.
    Config::from_str(url).map_err(|e| Error::bad("database URL", format!("not a PostgreSQL connection string: {e}")))
}

fn poisoned() -> Error {
    Error::Internal("the PostgreSQL pool lock was poisoned by a panic".into())
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.idle.lock() {
            pool.clients.clear();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the config: it may hold a password.
        f.debug_struct("PostgresStorage").finish_non_exhaustive()
    }
}

/// A client borrowed from the pool. Its query methods use the connection's prepared statements.
pub(crate) struct Pooled<'a> {
    conn: Option<Conn>,
    storage: &'a PostgresStorage,
}

impl Pooled<'_> {
    fn conn(&self) -> &Conn {
        self.conn.as_ref().expect("a pooled client is present until dropped")
    }

    fn parts(&self) -> (&Client, &Statements) {
        let conn = self.conn();
        (&conn.client, &conn.statements)
    }

    /// Starts a transaction (read committed).
    pub(crate) async fn transaction(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        let Conn { client, statements } = self.conn.as_mut().expect("a pooled client is present until dropped");
        Ok(Tx {
            tx: client.transaction().await?,
            statements,
        })
    }

    /// Starts a repeatable-read transaction: every query in it sees one snapshot.
    pub(crate) async fn snapshot(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        let Conn { client, statements } = self.conn.as_mut().expect("a pooled client is present until dropped");
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await?;
        Ok(Tx { tx, statements })
    }
}

impl Deref for Pooled<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.conn().client
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self
            .conn
            .as_mut()
            .expect("a pooled client is present until dropped")
            .client
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if let Ok(mut pool) = self.storage.idle.lock() {
            if conn.client.is_closed() {
                pool.open -= 1;
            } else {
                pool.clients.push(conn);
            }
            // Every waiter looks: only the first in line takes it.
            self.storage.returned.notify_all();
        }
    }
}

/// A transaction on a pooled client, using its connection's prepared statements.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a Statements,
}

impl<'a> Tx<'a> {
    pub(crate) async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.tx.commit().await
    }

    fn parts(&self) -> (&Transaction<'a>, &Statements) {
        (&self.tx, self.statements)
    }
}

impl<'a> Deref for Tx<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Transaction<'a> {
        &self.tx
    }
}

/// The statements prepared on one connection, by their text.
#[derive(Default)]
struct Statements(Mutex<HashMap<String, Statement>>);

impl Statements {
    async fn get(&self, client: &impl GenericClient, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.lock().get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(sql).await?;
        let mut statements = self.lock();
        if statements.len() >= MAX_STATEMENTS {
            statements.clear();
        }
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Statement>> {
        // A map of prepared statements stays sound whatever panicked while it was held.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// Queries through prepared statements, on a pooled client or in a transaction.
pub(crate) trait Sql {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error>;
    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error>;
    async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error>;
    async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, tokio_postgres::Error>;
}

/// `Sql` for a type whose `parts` are a tokio-postgres client or transaction and its
/// connection's `Statements`.
macro_rules! prepared_queries {
    ($type:ident) => {
        impl Sql for $type<'_> {
            async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
                let (client, statements) = self.parts();
                client.execute(&statements.get(client, sql).await?, params).await
            }

            async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
                let (client, statements) = self.parts();
                client.query(&statements.get(client, sql).await?, params).await
            }

            async fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
                let (client, statements) = self.parts();
                client
                    .query_one(&statements.get(client, sql).await?, params)
                    .await
            }

            async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
                let (client, statements) = self.parts();
                client
                    .query_opt(&statements.get(client, sql).await?, params)
                    .await
            }
        }
    };
}

prepared_queries!(Pooled);
prepared_queries!(Tx);

/// A `u64` sequence number as PostgreSQL's BIGINT.
pub(crate) fn sql_seq(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| Error::Internal(format!("sequence number {seq} is past PostgreSQL's BIGINT")))
}

/// A BIGINT read back as a sequence number.
pub(crate) fn seq_from(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Internal(format!("a stored sequence number is negative: {value}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn callers_waiting_for_a_connection_are_served_in_the_order_they_asked() {
        let url =
            std::env::var("OUTPOST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let storage = Arc::new(
            PostgresStorage::unmigrated(parse(&url).unwrap())
                .unwrap_or_else(|e| panic!("PostgreSQL is needed for this test (OUTPOST_TEST_POSTGRES): {e}")),
        );
        let mut held: Vec<Pooled<'_>> = (0..MAX_CONNECTIONS).map(|_| storage.client().unwrap()).collect();
        // Three callers queue up, in a known order, while every connection is in use.
        let served = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..3)
            .map(|i| {
                let (shared, served) = (storage.clone(), served.clone());
                let caller = std::thread::spawn(move || {
                    let client = shared.client().unwrap();
                    let order = served.fetch_add(1, Ordering::SeqCst);
                    // Holds it until the test has seen who came next.
                    std::thread::sleep(Duration::from_millis(300));
                    drop(client);
                    (i, order)
                });
                while storage.pool().unwrap().waiting.len() <= i {
                    std::thread::sleep(Duration::from_millis(5));
                }
                caller
            })
            .collect();
        // A connection comes free just as another caller asks: it must wait its turn, behind
        // the three (each of which passes the one connection on).
        drop(held.pop());
        let late = storage.client().unwrap();
        assert_eq!(
            served.load(Ordering::SeqCst),
            3,
            "the late caller went before a waiting one"
        );
        drop(late);
        let orders: Vec<(usize, usize)> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(orders, [(0, 0), (1, 1), (2, 2)]);
    }
}
