//! A server and its devices in one process, for tests of the sync logic itself: each device's
//! rounds go straight to the server's `SyncService`, so every step is deterministic. Tests of
//! the network use the same world through the real TLS transport instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use outpost_core::sync::{Progress, SyncClient, wire};
use outpost_core::{Author, DeviceId, Store, TeamId, WorkerId};
use outpost_server::auth;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{Accounts, Device, Role, ScopePolicy, Storage};
use outpost_server::{AppState, Error};

/// The world's server listening on a loopback port over real TLS.
#[allow(missing_debug_implementations)]
pub struct Served {
    pub addr: std::net::SocketAddr,
    pub ca_pem: Vec<u8>,
    pub handle: axum_server::Handle<std::net::SocketAddr>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The server as devices know it: the development certificate names 127.0.0.1, and the port
/// is nominal (`Phone::client` connects wherever it is told), so in-process and network syncs
/// share one peer's state.
const NET_HOST: &str = "127.0.0.1";
const NET_PORT: u16 = 8443;
/// The peer name devices use for the server, in process or over the network.
pub const PEER: &str = "127.0.0.1:8443";

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
    /// Shared the way an app shares it between its UI and its sync task.
    pub shared: Arc<Mutex<Store>>,
    pub path: PathBuf,
}

impl World {
    pub fn new() -> Self {
        Self::with_alerts(outpost_server::alerts::Alerts::disabled())
    }

    /// A world whose server tells team leads of safeguarding concerns through `alerts`.
    pub fn with_alerts(alerts: outpost_server::alerts::Alerts) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite3")).unwrap());
        let state = AppState::with_alerts(storage.clone() as Arc<dyn Storage>, alerts).unwrap();
        Self { dir, state, storage }
    }

    /// A world whose server starts from a consistent copy of this one's database, as it is now.
    pub fn fork(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.sqlite3");
        self.storage.backup(&path).unwrap();
        let storage = Arc::new(SqliteStorage::open(&path).unwrap());
        let state = AppState::new(storage.clone() as Arc<dyn Storage>).unwrap();
        Self { dir, state, storage }
    }

    /// Restores the server from `backup` (taken with `storage.backup`), as the admin's
    /// `restore` command does, and starts it again with a fresh actor.
    pub fn restore(&mut self, backup: &std::path::Path) {
        let live = self.dir.path().join("server.sqlite3");
        SqliteStorage::restore(backup, &live).unwrap();
        self.storage = Arc::new(SqliteStorage::open(&live).unwrap());
        self.state = AppState::new(self.storage.clone() as Arc<dyn Storage>).unwrap();
    }

    /// Enrols `phone` again under its own device id, after a restore lost its enrolment.
    pub fn reenrol(&self, phone: &mut Phone) {
        let code = auth::new_enrolment_code();
        self.storage
            .add_enrolment_code(&phone.device.worker, &auth::hash_enrolment_code(&code), i64::MAX)
            .unwrap();
        phone.credential = auth::new_secret();
        phone.device = self
            .storage
            .enrol(
                &auth::hash_enrolment_code(&code),
                &phone.device.device,
                "re-enrolled",
                &auth::hash_secret(&phone.credential),
                0,
            )
            .unwrap();
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
            shared: Arc::new(Mutex::new(store)),
            path,
        }
    }

    /// Serves this world's server over TLS on 127.0.0.1 (a development certificate made now).
    /// Call from inside a tokio runtime.
    pub fn serve(&self) -> Served {
        self.serve_on(0)
    }

    /// The same on `port` (0: any free one), its development certificate made once per world;
    /// a port just given up is retried for a few seconds while its old server lets go.
    pub fn serve_on(&self, port: u16) -> Served {
        let tls_dir = self.dir.path().join("tls");
        let dev = outpost_server::tls::dev_certificate(&tls_dir).unwrap();
        let config = outpost_server::tls::server_config(&dev.cert, &dev.key).unwrap();
        let mut tries = 0;
        let listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(e) if tries < 100 && e.kind() == std::io::ErrorKind::AddrInUse => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("binding 127.0.0.1:{port}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let handle = axum_server::Handle::new();
        tokio::spawn(outpost_server::serve_tls(
            listener,
            config,
            self.state.clone(),
            handle.clone(),
        ));
        Served {
            addr,
            ca_pem: std::fs::read(&dev.ca).unwrap(),
            handle,
        }
    }

    /// Runs one whole sync for `phone` in process; returns its progress.
    pub fn sync(&self, phone: &mut Phone) -> Result<Progress, Error> {
        // Authenticated as every request over the network is.
        let device = self
            .storage
            .authenticate(&auth::hash_secret(&phone.credential))?
            .ok_or_else(|| Error::Unauthenticated("unknown or revoked credential".into()))?;
        let mut client = SyncClient::new(PEER);
        let mut store = phone.store();
        while let Some(request) = client.next_request(&mut store)? {
            let request: wire::Request = wire::decode_one(&request, "sync request")?;
            let response = self.state.sync.round(&device, request)?;
            client.receive(&mut store, &response)?;
            client.end_response(&mut store)?;
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
    /// A network client for this phone that knows the server as `PEER` (whatever port it is
    /// on), trusting `ca_pem` and connecting to `addr` (the server, or a proxy in front of it).
    pub fn client(&self, addr: std::net::SocketAddr, ca_pem: &[u8]) -> outpost_core::net::Client {
        let mut config = outpost_core::net::ClientConfig::new(NET_HOST, NET_PORT);
        config.ca_pem = Some(ca_pem.to_vec());
        config.credential = Some(self.credential.clone());
        config.connect_to = Some(addr);
        outpost_core::net::Client::new(config).unwrap()
    }

    /// Closes the store, replaces its file with `backup` (as restoring a phone does) and opens
    /// it again, with a fresh actor as at every launch.
    pub fn restore_from(&mut self, backup: &std::path::Path) {
        let mut store = self.store();
        let author = store.author().clone();
        let placeholder = Store::open(self.path.with_extension("scratch"), author.clone()).unwrap();
        drop(std::mem::replace(&mut *store, placeholder));
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
        std::fs::copy(backup, &self.path).unwrap();
        *store = Store::open(&self.path, author).unwrap();
    }

    /// The same device with a copy of its store, as it is now, in `world`'s directory.
    pub fn fork(&self, world: &World) -> Phone {
        let store = self.store();
        let path = world.dir.path().join(self.path.file_name().unwrap());
        store.backup_to(&path).unwrap();
        let copy = Store::open(&path, store.author().clone()).unwrap();
        Phone {
            device: self.device.clone(),
            credential: self.credential.clone(),
            shared: Arc::new(Mutex::new(copy)),
            path,
        }
    }

    /// Closes and reopens the store, as relaunching the app does (a fresh actor).
    pub fn relaunch(&mut self) {
        let copy = self.path.with_extension("relaunch");
        let _ = std::fs::remove_file(&copy);
        self.store().backup_to(&copy).unwrap();
        self.restore_from(&copy);
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.lock().unwrap()
    }
}
