//! A team served over real TLS on a loopback port, for tests that drive whole devices (the
//! `Device` façade, or the generated bindings) against the real server.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use outpost_core::{Clock, Device, NewPerson, RiskTier, Server, TeamId, WorkerId};
use outpost_server::signing::ServerKey;
use outpost_server::storage::{Accounts, Role, ScopePolicy, Storage, WebAccounts};
use outpost_server::web::sign_in::hash_password;
use outpost_server::{AppState, alerts, auth};

use crate::world::{Served, World};

/// Team `t1` (every worker holds the team's caseload): workers `w1` and `w2`, lead `lead1`.
#[allow(missing_debug_implementations)]
pub struct ServedTeam {
    pub world: World,
    pub served: Served,
    /// What the server dates leases by, and the clock of every device `enrolled` makes.
    pub clock: Arc<TestClock>,
    /// Runs the server; dropped last.
    pub runtime: tokio::runtime::Runtime,
}

/// The system's time moved by whatever a test says, so a fourteen-day lease runs out at once.
#[derive(Debug, Default)]
pub struct TestClock {
    offset: AtomicI64,
}

impl TestClock {
    /// Moves the clock `seconds` on (back, when negative).
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset.load(Ordering::SeqCst)
    }
}

impl ServedTeam {
    pub fn start() -> Self {
        Self::start_with(World::new())
    }

    /// The same team over `world` (one made `World::with_alerts`, say).
    pub fn start_with(world: World) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let team = world.team("t1", ScopePolicy::Team);
        world.worker("w1", &team, Role::Worker);
        world.worker("w2", &team, Role::Worker);
        world.worker("lead1", &team, Role::Lead);
        let clock = Arc::new(TestClock::default());
        world.state.sync.set_clock(clock.clone()).unwrap();
        let served = runtime.block_on(async { world.serve() });
        Self {
            world,
            served,
            clock,
            runtime,
        }
    }

    /// Stops the server and starts it again on the same port and database, signing leases with
    /// `key` (a server that lost its key, or an impostor holding the same certificate).
    pub fn restart_with_key(&mut self, key: ServerKey) {
        let storage = self.world.storage.clone() as Arc<dyn Storage>;
        let state = AppState::with_key(storage, alerts::Alerts::disabled(), Arc::new(key)).unwrap();
        state.sync.set_clock(self.clock.clone()).unwrap();
        self.world.state = state;
        let port = self.served.addr.port();
        self.served.handle.shutdown();
        let served = self.runtime.block_on(async { self.world.serve_on(port) });
        self.served = served;
    }

    /// A one-time enrolment code for `worker`, as the admin CLI hands out.
    pub fn code(&self, worker: &str) -> String {
        let code = auth::new_enrolment_code();
        self.world
            .storage
            .add_enrolment_code(
                &WorkerId::new(worker).unwrap(),
                &auth::hash_enrolment_code(&code),
                i64::MAX,
            )
            .unwrap();
        code
    }

    /// Gives `lead` a password for the review pages, as the admin's `set-password` does, and
    /// returns it.
    pub fn password(&self, lead: &str) -> String {
        let password = format!("{lead} correct horse battery");
        self.world
            .storage
            .set_password(
                &WorkerId::new(lead).unwrap(),
                &hash_password(&password).unwrap(),
                chrono::Utc::now().timestamp(),
            )
            .unwrap();
        password
    }

    /// The server as a device enrols with it: the name its certificate carries, and its CA.
    pub fn server(&self) -> Server {
        Server {
            host: "127.0.0.1".into(),
            port: self.served.addr.port(),
            ca_pem: Some(self.served.ca_pem.clone()),
            pins: Vec::new(),
        }
    }

    /// A device of `worker`, its store in `file` under the world's directory, enrolled as the
    /// app enrols.
    pub fn enrolled(&self, worker: &str, file: &str) -> Device {
        let device = Device::open(self.world.dir.path().join(file), None).unwrap();
        device.set_clock(self.clock.clone()).unwrap();
        device.enrol(self.server(), &self.code(worker), file).unwrap();
        device
    }
}

/// A person of team `t1`, allocated to `w1`, with only a name and a risk tier.
pub fn person(name: &str, risk: RiskTier) -> NewPerson {
    NewPerson {
        name: name.into(),
        preferred_name: None,
        date_of_birth: None,
        nhs_number: None,
        address: None,
        team: TeamId::new("t1").unwrap(),
        allocated_workers: vec![WorkerId::new("w1").unwrap()],
        risk,
    }
}

/// A device whose store is encrypted, with what a forensic scan needs to read it: its file and
/// its key.
#[allow(missing_debug_implementations)]
pub struct KeyedPhone {
    pub device: Device,
    pub path: std::path::PathBuf,
    pub key: [u8; 32],
}

impl ServedTeam {
    /// A device of `worker` whose store in `file` is encrypted under a key of `key_byte`s,
    /// enrolled as the app enrols.
    pub fn enrolled_with_key(&self, worker: &str, file: &str, key_byte: u8) -> KeyedPhone {
        let path = self.world.dir.path().join(file);
        let key = [key_byte; 32];
        let device = Device::open(&path, Some(&key)).unwrap();
        device.set_clock(self.clock.clone()).unwrap();
        device.enrol(self.server(), &self.code(worker), file).unwrap();
        KeyedPhone { device, path, key }
    }

    /// Every place removed text could hide, scanned for `probes` (`forensics::scan_sqlite`):
    /// the server's database, each phone's (decrypted with its key), and a backup of each taken
    /// now, named by `label`.
    pub fn scan_everywhere(
        &self,
        phones: &[&KeyedPhone],
        probes: &[&str],
        label: &str,
    ) -> Vec<(String, crate::forensics::Found)> {
        use crate::forensics::scan_sqlite;
        let dir = self.world.dir.path();
        let server_backup = dir.join(format!("server-backup-{label}.sqlite3"));
        self.world.storage.backup(&server_backup).unwrap();
        let mut scans = vec![
            (
                "server".to_string(),
                scan_sqlite(&dir.join("server.sqlite3"), None, probes),
            ),
            ("server backup".to_string(), scan_sqlite(&server_backup, None, probes)),
        ];
        for (i, phone) in phones.iter().enumerate() {
            let backup = dir.join(format!("phone-{i}-backup-{label}.sqlite3"));
            let dest = backup.clone();
            phone.device.read(move |s| s.backup_to(&dest)).unwrap();
            scans.push((format!("phone {i}"), scan_sqlite(&phone.path, Some(&phone.key), probes)));
            scans.push((
                format!("phone {i} backup"),
                scan_sqlite(&backup, Some(&phone.key), probes),
            ));
        }
        scans
    }
}
