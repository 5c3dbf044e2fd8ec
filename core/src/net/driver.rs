//! Drives the sans-IO sync engine over a `Client`: one HTTP request per round, the answer fed
//! to the engine chunk by chunk, failed rounds retried with backoff until the deadline.
//!
//! Every engine call touches SQLite, which blocks, so each runs under `spawn_blocking` with the
//! store locked for that call only: an async worker thread never waits on the disk, and the app
//! can read the store between chunks.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::time::Instant;

use super::retry::{Backoff, Limits};
use super::{Client, SYNC, SyncOptions, SyncReport, http};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::{Progress, SyncClient};

impl Client {
    /// Syncs `store` with the server until there is nothing left to exchange.
    ///
    /// A failed round (the network, a 5xx, a cut answer, a stall) is retried: the engine keeps
    /// what was applied and rebuilds the request from the store, so only what is unacknowledged
    /// is sent again. A refused credential or request ends the sync at once. At the deadline
    /// the sync stops with `DeadlineReached`, keeping what was applied. The outcome is recorded
    /// in the store for `sync_status`. Dropping the future stops the sync; what was applied
    /// stays.
    pub async fn sync(&mut self, store: Arc<Mutex<Store>>, options: SyncOptions) -> Result<SyncReport> {
        let peer = self.peer();
        let mut engine = Engine {
            store,
            sync: Some(SyncClient::new(&peer)),
            progress: Progress::default(),
        };
        let before = self.stats;
        let mut report = SyncReport::default();
        let outcome = self.rounds(&mut engine, &options, &mut report).await;
        report.connections = self.stats.connections - before.connections;
        report.tls_resumed = self.stats.tls_resumed - before.tls_resumed;
        report.progress = engine.progress.clone();

        let reason = outcome.as_ref().err().map(ToString::to_string);
        let recorded = engine
            .with_store(move |store| store.record_sync_outcome(&peer, reason.as_deref().map_or(Ok(()), Err)))
            .await;
        match (outcome, recorded) {
            (Ok(()), recorded) => recorded.map(|()| report),
            (Err(error), Ok(())) => Err(error),
            (Err(error), Err(unrecorded)) => {
                tracing::warn!(%error, %unrecorded, "the sync's failure could not be recorded");
                Err(error)
            }
        }
    }

    async fn rounds(&mut self, engine: &mut Engine, options: &SyncOptions, report: &mut SyncReport) -> Result<()> {
        let limits = self.limits(options.deadline);
        let backoff = Backoff {
            base: options.backoff_base,
            max: options.backoff_max,
        };
        let mut failures = 0;
        loop {
            if limits.deadline_passed() {
                return Err(Error::DeadlineReached);
            }
            let Some(request) = engine.call(|sync, store| sync.next_request(store)).await? else {
                return Ok(());
            };
            report.attempts += 1;
            let Err(error) = self.round(engine, request.into(), &limits, options, report).await else {
                report.rounds += 1;
                failures = 0;
                continue;
            };
            if let Err(e) = engine.call(|sync, store| sync.keep_received(store)).await {
                tracing::warn!(error = %e, "documents received before the failure could not be kept");
            }
            engine.abandon_round();
            self.disconnect();
            failures += 1;
            if !matches!(error, Error::Network(_)) || failures >= options.max_attempts.max(1) {
                return Err(error);
            }
            // Never sooner than the server asked (a 429's Retry-After).
            let delay = backoff
                .delay(failures, &mut rand::rng())
                .max(self.retry_after.take().unwrap_or_default());
            if limits
                .deadline
                .is_some_and(|deadline| Instant::now() + delay >= deadline)
            {
                return Err(Error::DeadlineReached);
            }
            tracing::info!(%error, ?delay, failures, "sync round failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn round(
        &mut self,
        engine: &mut Engine,
        request: Bytes,
        limits: &Limits,
        options: &SyncOptions,
        report: &mut SyncReport,
    ) -> Result<()> {
        report.request_body_bytes += request.len() as u64;
        let mut body = self.exchange(limits, &SYNC, request).await?.into_body();
        while let Some(chunk) = http::next_chunk(&mut body, limits, "receiving the sync answer").await? {
            report.response_body_bytes += chunk.len() as u64;
            engine.call(move |sync, store| sync.receive(store, &chunk)).await?;
            if let Some(on_progress) = &options.on_progress {
                on_progress(&engine.progress);
            }
        }
        engine.call(|sync, store| sync.end_response(store)).await
    }
}

/// The sync engine and the store it works on, called off the async threads.
struct Engine {
    store: Arc<Mutex<Store>>,
    /// Moved into each blocking call and back; None only if a call panicked.
    sync: Option<SyncClient>,
    /// The engine's progress as of its last call.
    progress: Progress,
}

impl Engine {
    async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut SyncClient, &mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut sync = self
            .sync
            .take()
            .ok_or_else(|| internal("the sync engine was lost to a panic"))?;
        let store = Arc::clone(&self.store);
        let (sync, result) = tokio::task::spawn_blocking(move || {
            let result = lock(&store).and_then(|mut store| f(&mut sync, &mut store));
            (sync, result)
        })
        .await
        .map_err(|e| internal(&format!("the sync engine stopped: {e}")))?;
        self.progress = sync.progress().clone();
        self.sync = Some(sync);
        result
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || lock(&store).and_then(|mut store| f(&mut store)))
            .await
            .map_err(|e| internal(&format!("recording the sync's outcome stopped: {e}")))?
    }

    fn abandon_round(&mut self) {
        if let Some(sync) = &mut self.sync {
            sync.abandon_round();
        }
    }
}

fn lock(store: &Mutex<Store>) -> Result<std::sync::MutexGuard<'_, Store>> {
    store
        .lock()
        .map_err(|_| internal("the store's lock was poisoned by a panic in another thread"))
}

/// A failure inside this process rather than on the network or in the data. `Error` has no
/// variant of its own for that; SQLite's "misuse" code is the nearest storage error.
fn internal(reason: &str) -> Error {
    Error::Storage(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some(reason.to_string()),
    ))
}
