//! A server and its devices in one process, for tests of the sync logic itself: each device's
//! rounds go straight to the server's `SyncService`, so every step is deterministic. Tests of
//! the network use the same world through the real TLS transport instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use outpost_core::sync::{Progress, SyncClient, wire};
use outpost_core::{Author, DeviceId, Store, TeamId, WorkerId};
use outpost_server::auth;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{Accounts, Device, Role, ScopePolicy, Storage};
use outpost_server::{AppState, Error};

/// The peer name devices use for the in-process server.
pub const PEER: &str = "server";

#[allow(missing_debug_implementations)]
pub struct World {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub storage: Arc<SqliteStorage>,
}

/// An enrolled device with its own store file.
#[allow(missing_debug_implementations)]
pub struct Phone {
    pub device: Device,
    pub credential: String,
    pub store: Store,
    pub path: PathBuf,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite3")).unwrap());
        let state = AppState::new(storage.clone() as Arc<dyn Storage>).unwrap();
        Self { dir, state, storage }
    }

    pub fn team(&self, team: &str, scope: ScopePolicy) -> TeamId {
        let id = TeamId::new(team).unwrap();
        self.storage.create_team(&id, team, scope).unwrap();
        id
    }

    pub fn worker(&self, worker: &str, team: &TeamId, role: Role) -> WorkerId {
        let id = WorkerId::new(worker).unwrap();
        self.storage.add_worker(&id, worker, role, team).unwrap();
        id
    }

    /// Enrols a new device for `worker` the way the admin and the phone would.
    pub fn enrol(&self, worker: &WorkerId, device: &str) -> Phone {
        let code = auth::new_enrolment_code();
        self.storage
            .add_enrolment_code(worker, &auth::hash_enrolment_code(&code), i64::MAX)
            .unwrap();
        let credential = auth::new_secret();
        let device_id = DeviceId::new(device).unwrap();
        let device = self
            .storage
            .enrol(
                &auth::hash_enrolment_code(&code),
                &device_id,
                device,
                &auth::hash_secret(&credential),
                0,
            )
            .unwrap();
        let path = self.dir.path().join(format!("{device_id}.sqlite3"));
        let store = Store::open(&path, Author::new(worker.clone(), device_id)).unwrap();
        Phone {
            device,
            credential,
            store,
            path,
        }
    }

    /// Runs one whole sync for `phone` in process; returns its progress.
    pub fn sync(&self, phone: &mut Phone) -> Result<Progress, Error> {
        let mut client = SyncClient::new(PEER);
        while let Some(request) = client.next_request(&mut phone.store)? {
            let request: wire::Request = wire::decode_one(&request, "sync request")?;
            let response = self.state.sync.round(&phone.device, request)?;
            client.receive(&mut phone.store, &response)?;
            client.end_response(&mut phone.store)?;
        }
        Ok(client.progress().clone())
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl Phone {
    /// Closes the store, replaces its file with `backup` (as restoring a phone does) and opens
    /// it again, with a fresh actor as at every launch.
    pub fn restore_from(&mut self, backup: &std::path::Path) {
        let author = self.store.author().clone();
        let placeholder = Store::open(self.path.with_extension("scratch"), author.clone()).unwrap();
        drop(std::mem::replace(&mut self.store, placeholder));
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
        std::fs::copy(backup, &self.path).unwrap();
        self.store = Store::open(&self.path, author).unwrap();
    }
}
