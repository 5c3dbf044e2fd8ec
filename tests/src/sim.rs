//! A deterministic simulated network over the sans-IO sync engine: five devices (each a real
//! core `Store` driving a `SyncClient`) and the server's `SyncService`, in one process. A seeded
//! scheduler interleaves edits, sync rounds and network events; the network between each
//! device and the server carries the real request and response bytes and drops them, cuts them,
//! duplicates requests, delivers requests late and responses stale, and cuts devices off for a
//! stretch. At the end everything heals, every device syncs until nothing moves, and `check`
//! asserts that every device holds exactly the server's documents and that every change a
//! device saw acknowledged, or saved, is on the server.
//!
//! Determinism: the seed alone decides the schedule, every fault and every choice the scheduler
//! makes (each step draws the same random numbers whatever happens, and choices depend only on
//! what the scheduler itself knows). Automerge's actors and Outpost's document ids are random in
//! the core, so bytes and merge tie-breaks differ between runs; `Outcome::digest` covers what
//! the seed decides, and a test runs one seed twice to compare it.

mod check;
mod network;
mod workload;

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use outpost_core::sync::SyncClient;
use outpost_core::sync::wire::{self, Request};
use outpost_core::{ChangeHash, DocId, ReviewAction, WorkerId};
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{Documents, Role, ScopePolicy, Storage};
use outpost_server::{AppState, review};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use network::Faults;
use network::{Delivery, Link};
use workload::{DocRef, Registry};

use crate::world::{PEER, Phone, World};

/// How busy each simulated run is, and how often the network misbehaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Scheduler steps before everything heals.
    pub steps: usize,
    /// Chance that a step is an edit; most of the rest are sync rounds.
    pub edit_share: f64,
    /// Chance of each fault where it can happen.
    pub fault: f64,
    /// Chance per step that a device is cut off, and the longest stretch in steps.
    pub partition: f64,
    pub partition_steps: usize,
}

impl Config {
    /// The test suite's: short runs, faults often.
    pub fn test() -> Self {
        Self {
            steps: 36,
            edit_share: 0.38,
            fault: 0.15,
            partition: 0.03,
            partition_steps: 12,
        }
    }

    /// A longer run per seed, for scripts/sim.sh.
    pub fn long() -> Self {
        Self {
            steps: 120,
            ..Self::test()
        }
    }
}

/// What one seed's run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub seed: u64,
    pub faults: Faults,
    pub edits: usize,
    pub rounds: usize,
    /// Visits submitted for review by their workers, and decided by the lead.
    pub submissions: usize,
    pub lead_decisions: usize,
    /// Documents on the server at the end.
    pub documents: usize,
    /// Acknowledgements devices saw, each checked against the server at the end.
    pub acks_checked: usize,
    /// Sync passes the healed network needed before nothing moved.
    pub passes_to_quiet: usize,
    /// A digest of everything the seed decides: the schedule, the faults, the outcome of every
    /// round and the shape of the final state.
    pub digest: u64,
}

/// A property that failed, or a step that went wrong, with the seed and step it happened at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<outpost_core::Error> for Failure {
    fn from(e: outpost_core::Error) -> Self {
        Failure(format!("core: {e}"))
    }
}

impl From<outpost_server::Error> for Failure {
    fn from(e: outpost_server::Error) -> Self {
        Failure(format!("server: {e}"))
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(message.into()))
}

/// Runs one seed: the schedule, then healing, then the checks.
pub fn run(seed: u64, config: &Config) -> Result<Outcome, Failure> {
    let mut sim = Sim::new(seed, config.clone())?;
    let result = sim.run();
    result.map_err(|e| Failure(format!("seed {seed}, step {}: {e}", sim.step)))
}

/// Every seed in `seeds`, over `threads` threads; the first failure stops the rest.
pub fn run_seeds(seeds: std::ops::Range<u64>, config: &Config, threads: usize) -> Result<Vec<Outcome>, Failure> {
    let next = std::sync::atomic::AtomicU64::new(seeds.start);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while !failed.load(std::sync::atomic::Ordering::Relaxed) {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let result = run(seed, config);
                    if result.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Ok(mut results) = results.lock() {
                        results.push(result);
                    }
                }
            });
        }
    });
    let mut outcomes = Vec::new();
    let mut results = results
        .into_inner()
        .map_err(|_| Failure("a seed's thread panicked".into()))?;
    results.sort_by_key(|r| r.as_ref().map_or(0, |o| o.seed));
    for result in results {
        outcomes.push(result?);
    }
    Ok(outcomes)
}

/// The devices: two for one worker (a phone and a tablet), one each for three more.
const DEVICES: [(&str, &str); 5] = [
    ("sw-ann", "ann-phone"),
    ("sw-ann", "ann-tablet"),
    ("sw-ben", "ben-phone"),
    ("cn-cat", "cat-phone"),
    ("cn-dev", "dev-phone"),
];
const LEAD: &str = "lead-lea";
/// Shares of the steps that are not edits: a held request reaches the server late, the lead
/// decides a submitted visit, an app restarts; the rest are sync rounds.
const LATE_DELIVERY_SHARE: f64 = 0.08;
const LEAD_SHARE: f64 = 0.05;
const RELAUNCH_SHARE: f64 = 0.01;
const TEAM: &str = "north";

/// One device, its sync session and what the scheduler knows of it.
struct Node {
    phone: Phone,
    worker: WorkerId,
    /// The sync in progress, if any, and its failed rounds so far.
    session: Option<(SyncClient, u32)>,
    /// The answer on its way to this device for the round in progress.
    awaiting: Option<Delivery>,
    link: Link,
    /// Documents this device certainly holds: its own, and whatever the server held when it
    /// answered a round whose answer arrived whole.
    known: BTreeSet<DocRef>,
    /// Every acknowledgement this device saw, and the heads after each of its own edits.
    acked: Vec<(DocId, Vec<ChangeHash>)>,
    saved: Vec<(DocId, Vec<ChangeHash>)>,
}

struct Sim {
    config: Config,
    rng: StdRng,
    world: World,
    lead: WorkerId,
    nodes: Vec<Node>,
    registry: Registry,
    /// Documents the server holds, as far as its answers said.
    on_server: BTreeSet<DocRef>,
    faults: Faults,
    outcome: Outcome,
    trace: DefaultHasher,
    step: usize,
}

impl Sim {
    fn new(seed: u64, config: Config) -> Result<Self, Failure> {
        let world = world_in_memory()?;
        let team = world.team(TEAM, ScopePolicy::Team);
        let lead = world.worker(LEAD, &team, Role::Lead);
        let mut workers: HashMap<&str, WorkerId> = HashMap::new();
        let mut nodes = Vec::new();
        for (worker, device) in DEVICES {
            let worker = workers
                .entry(worker)
                .or_insert_with(|| world.worker(worker, &team, Role::Worker))
                .clone();
            nodes.push(Node {
                phone: world.enrol(&worker, device),
                worker,
                session: None,
                awaiting: None,
                link: Link::default(),
                known: BTreeSet::new(),
                acked: Vec::new(),
                saved: Vec::new(),
            });
        }
        Ok(Self {
            config,
            rng: StdRng::seed_from_u64(seed),
            world,
            lead,
            nodes,
            registry: Registry::default(),
            on_server: BTreeSet::new(),
            faults: Faults::default(),
            outcome: Outcome {
                seed,
                ..Outcome::default()
            },
            trace: DefaultHasher::new(),
            step: 0,
        })
    }

    fn run(&mut self) -> Result<Outcome, Failure> {
        for step in 0..self.config.steps {
            self.step = step;
            // The same draws every step, whatever the step turns out to do.
            let draws: [f64; 12] = self.rng.random();
            let device = ((draws[0] * self.nodes.len() as f64) as usize).min(self.nodes.len() - 1);
            self.record(&(step, device));
            if draws[1] < self.config.partition {
                let until = step + 1 + (draws[2] * self.config.partition_steps as f64) as usize;
                self.nodes[device].link.partitioned_until = until;
                self.faults.partitions += 1;
                self.record(&("partition", until));
            }
            let (kind, rest) = (draws[3], &draws[4..]);
            let edits = self.config.edit_share;
            if kind < edits {
                self.edit(device, rest)?;
            } else if kind < edits + LATE_DELIVERY_SHARE {
                self.network_event(device, rest)?;
            } else if kind < edits + LATE_DELIVERY_SHARE + LEAD_SHARE {
                self.lead_decision(rest)?;
            } else if kind < edits + LATE_DELIVERY_SHARE + LEAD_SHARE + RELAUNCH_SHARE {
                self.relaunch(device);
            } else {
                self.sync_step(device, rest)?;
            }
        }
        self.step = self.config.steps;
        self.heal()?;
        self.outcome.passes_to_quiet = self.quiesce()?;
        check::converged(self)?;
        self.outcome.faults = self.faults.clone();
        self.outcome.submissions = self.registry.visits.iter().filter(|v| v.submitted).count();
        self.record(&(self.outcome.documents, self.outcome.acks_checked));
        self.outcome.digest = self.trace.finish();
        Ok(self.outcome.clone())
    }

    fn record(&mut self, what: &impl Hash) {
        what.hash(&mut self.trace);
    }

    fn edit(&mut self, device: usize, draws: &[f64]) -> Result<(), Failure> {
        let node = &mut self.nodes[device];
        let mut store = node.phone.store();
        let done = workload::edit(
            &mut store,
            device,
            &node.worker,
            TEAM,
            &mut self.registry,
            &mut node.known,
            draws,
        )?;
        drop(store);
        if let Some((what, saved)) = done {
            node.saved.extend(saved);
            self.outcome.edits += 1;
            self.record(&what);
        }
        Ok(())
    }

    /// A lead approves or returns a visit whose submission the server holds, once.
    fn lead_decision(&mut self, draws: &[f64]) -> Result<(), Failure> {
        let mut candidates = Vec::new();
        for visit in 0..self.registry.visits.len() {
            let entry = &self.registry.visits[visit];
            if entry.submitted && !entry.decided && self.submitted_on_server(&entry.id)? {
                candidates.push(visit);
            }
        }
        let Some(&visit) = workload::pick(&candidates, draws[0]) else {
            return Ok(());
        };
        let (action, comment) = if draws[1] < 0.7 {
            (ReviewAction::Approve, None)
        } else {
            (
                ReviewAction::Return,
                Some("Please add what was agreed about the carer."),
            )
        };
        review::decide(
            &self.world.state.sync,
            &self.lead,
            &self.registry.visits[visit].id,
            action,
            comment,
            None,
            "sim",
        )?;
        self.registry.visits[visit].decided = true;
        self.outcome.lead_decisions += 1;
        self.record(&("decide", visit, draws[1] < 0.7));
        Ok(())
    }

    /// Whether the server holds the visit's submission for review.
    fn submitted_on_server(&self, visit: &DocId) -> Result<bool, Failure> {
        let review = DocId::review_of(visit);
        let Some(stored) = self.world.storage.doc(&review)? else {
            return Ok(false);
        };
        let state = outpost_core::Record::load(review, &stored.snapshot)?.review()?.state;
        Ok(state.value == outpost_core::ReviewState::Submitted)
    }

    /// The app restarts: the sync in progress is lost, and the store reopens with a new actor.
    fn relaunch(&mut self, device: usize) {
        let node = &mut self.nodes[device];
        node.session = None;
        node.awaiting = None;
        node.phone.relaunch();
        self.record(&("relaunch", device));
    }

    /// One request or one answer of `device`'s sync, through the faulty network.
    fn sync_step(&mut self, device: usize, draws: &[f64]) -> Result<(), Failure> {
        if self.nodes[device].awaiting.is_some() {
            return self.receive(device, draws);
        }
        let node = &mut self.nodes[device];
        let (client, _) = node.session.get_or_insert_with(|| (SyncClient::new(PEER), 0));
        let request = client.next_request(&mut node.phone.store())?;
        let Some(request) = request else {
            node.session = None;
            self.record(&("complete", device));
            return Ok(());
        };
        self.outcome.rounds += 1;
        let partitioned = node.link.partitioned(self.step);
        match network::request_fault(partitioned, self.config.fault, draws) {
            network::RequestFault::Partitioned => {
                self.faults.partitioned_requests += 1;
                self.round_failed(device, "partitioned", draws[5])
            }
            network::RequestFault::Dropped => {
                self.faults.requests_dropped += 1;
                self.round_failed(device, "request dropped", draws[5])
            }
            network::RequestFault::Delayed => {
                // It reaches the server later, after newer requests.
                self.faults.requests_delayed += 1;
                self.nodes[device].link.late_requests.push(request);
                self.round_failed(device, "request delayed", draws[5])
            }
            network::RequestFault::Duplicated => {
                self.faults.requests_duplicated += 1;
                let first = self.serve(device, &request)?;
                let second = self.serve(device, &request)?;
                self.record(&("duplicated", device));
                self.nodes[device].awaiting = Some(if draws[6] < 0.5 { first } else { second });
                Ok(())
            }
            network::RequestFault::None => {
                let answer = self.serve(device, &request)?;
                self.record(&("sent", device));
                self.nodes[device].awaiting = Some(answer);
                Ok(())
            }
        }
    }

    /// The answer in flight reaches `device`, or does not.
    fn receive(&mut self, device: usize, draws: &[f64]) -> Result<(), Failure> {
        let Some(fresh) = self.nodes[device].awaiting.take() else {
            return Ok(());
        };
        let partitioned = self.nodes[device].link.partitioned(self.step);
        let stale_waiting = !self.nodes[device].link.late_responses.is_empty();
        match network::response_fault(partitioned, stale_waiting, self.config.fault, draws) {
            network::ResponseFault::Partitioned => {
                self.faults.partitioned_responses += 1;
                self.round_failed(device, "partitioned", draws[5])
            }
            network::ResponseFault::Dropped => {
                self.faults.responses_dropped += 1;
                self.round_failed(device, "response dropped", draws[5])
            }
            network::ResponseFault::Held => {
                // Delivered later, in place of a newer answer.
                self.faults.responses_held += 1;
                self.nodes[device].link.late_responses.push(fresh);
                self.round_failed(device, "response held", draws[5])
            }
            network::ResponseFault::Cut => {
                self.faults.responses_cut += 1;
                let cut = ((draws[6] * fresh.body.len() as f64) as usize).min(fresh.body.len().saturating_sub(1));
                match self.deliver(device, &fresh.body[..cut], draws[7])? {
                    Err(outpost_core::Error::Network(_)) => self.round_failed(device, "response cut", draws[5]),
                    Ok(()) => fail(format!(
                        "an answer cut at {cut} of {} bytes was accepted",
                        fresh.body.len()
                    )),
                    Err(e) => fail(format!("an answer cut at {cut} was refused as {e}, not as cut")),
                }
            }
            network::ResponseFault::Stale => {
                let link = &mut self.nodes[device].link;
                let index = ((draws[6] * link.late_responses.len() as f64) as usize).min(link.late_responses.len() - 1);
                let stale = link.late_responses.remove(index);
                // The newer answer is overtaken: it arrives later still, or never.
                if draws[4] < 0.5 {
                    link.late_responses.push(fresh);
                }
                self.faults.stale_responses += 1;
                self.record(&("stale", device, index));
                self.delivered(device, stale, draws[7])
            }
            network::ResponseFault::None => self.delivered(device, fresh, draws[7]),
        }
    }

    /// A whole answer reached the device: it must apply it.
    fn delivered(&mut self, device: usize, answer: Delivery, split: f64) -> Result<(), Failure> {
        if let Err(e) = self.deliver(device, &answer.body, split)? {
            return fail(format!("device {device} refused a whole answer: {e}"));
        }
        self.nodes[device].known.extend(answer.server_held);
        self.record(&("delivered", device));
        Ok(())
    }

    /// Feeds `bytes` to the device's sync in up to three pieces, each of which it must take,
    /// then ends the response: the result is what the end said.
    fn deliver(&mut self, device: usize, bytes: &[u8], split: f64) -> Result<Result<(), outpost_core::Error>, Failure> {
        let node = &mut self.nodes[device];
        node.acked.extend(network::acks_in(bytes));
        let Some((client, _)) = node.session.as_mut() else {
            return fail("an answer arrived for a device with no sync in progress");
        };
        let mut store = node.phone.store();
        let a = (split * bytes.len() as f64) as usize;
        let b = (a + bytes.len()) / 2;
        for piece in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
            if let Err(e) = client.receive(&mut store, piece) {
                return fail(format!("device {device} refused part of an answer: {e}"));
            }
        }
        Ok(client.end_response(&mut store))
    }

    /// The round failed as the transport would see it: what arrived whole is kept, the round is
    /// abandoned, and after three failures the sync gives up until the next one.
    fn round_failed(&mut self, device: usize, why: &str, give_up: f64) -> Result<(), Failure> {
        self.record(&("failed", device, why));
        let node = &mut self.nodes[device];
        let Some((client, failures)) = node.session.as_mut() else {
            return Ok(());
        };
        client.keep_received(&mut node.phone.store())?;
        client.abandon_round();
        *failures += 1;
        if *failures >= 3 || give_up < 0.2 {
            node.session = None;
        }
        Ok(())
    }

    /// The server answers one request, from its bytes, as its endpoint would.
    fn serve(&mut self, device: usize, request: &[u8]) -> Result<Delivery, Failure> {
        let decoded: Request = wire::decode_one(request, "sync request")?;
        let body = self.world.state.sync.round(&self.nodes[device].phone.device, decoded)?;
        let head = network::head_of(&body).ok_or_else(|| Failure("an answer without a head".into()))?;
        if let Some(refusal) = head.refused.first() {
            return fail(format!("the server refused {}: {}", refusal.doc, refusal.reason));
        }
        for ack in &head.acks {
            if let Some(doc) = DocId::new(ack.doc.as_str()).ok().and_then(|d| self.registry.find(&d)) {
                self.on_server.insert(doc);
            }
        }
        Ok(Delivery {
            body,
            server_held: self.on_server.clone(),
        })
    }

    /// Requests held in the network reach the server late; their answers go nowhere, or are
    /// held to reach the device later still.
    fn network_event(&mut self, device: usize, draws: &[f64]) -> Result<(), Failure> {
        if self.nodes[device].link.late_requests.is_empty() {
            return Ok(());
        }
        let late = self.nodes[device].link.late_requests.remove(0);
        self.faults.late_requests_delivered += 1;
        let answer = self.serve(device, &late)?;
        if draws[0] < 0.7 {
            self.nodes[device].link.late_responses.push(answer);
        }
        self.record(&("late request", device));
        Ok(())
    }

    /// Ends every fault: partitions lift, requests still in the network arrive (their answers
    /// are lost), and syncs in progress stop.
    fn heal(&mut self) -> Result<(), Failure> {
        for device in 0..self.nodes.len() {
            let late = std::mem::take(&mut self.nodes[device].link.late_requests);
            for request in late {
                self.faults.late_requests_delivered += 1;
                self.serve(device, &request)?;
            }
            let node = &mut self.nodes[device];
            node.link = Link::default();
            node.awaiting = None;
            if let Some((mut client, _)) = node.session.take() {
                client.keep_received(&mut node.phone.store())?;
            }
        }
        Ok(())
    }

    /// Syncs every device over a perfect network until a whole pass moves nothing.
    fn quiesce(&mut self) -> Result<usize, Failure> {
        for pass in 1..=8 {
            let mut moved = 0;
            for device in 0..self.nodes.len() {
                moved += self.clean_sync(device)?;
            }
            if moved == 0 {
                return Ok(pass);
            }
        }
        fail("the healed network did not go quiet in 8 passes")
    }

    /// One whole sync with no faults; returns how many documents it pushed or received.
    fn clean_sync(&mut self, device: usize) -> Result<usize, Failure> {
        let mut client = SyncClient::new(PEER);
        loop {
            let request = client.next_request(&mut self.nodes[device].phone.store())?;
            let Some(request) = request else { break };
            let answer = self.serve(device, &request)?;
            let node = &mut self.nodes[device];
            node.acked.extend(network::acks_in(&answer.body));
            let mut store = node.phone.store();
            client.receive(&mut store, &answer.body)?;
            client.end_response(&mut store)?;
            drop(store);
            node.known.extend(answer.server_held);
        }
        let progress = client.progress();
        if !progress.refused.is_empty() {
            return fail(format!("device {device} had pushes refused: {:?}", progress.refused));
        }
        Ok(progress.docs_pushed + progress.docs_received)
    }
}

/// A world whose databases live in memory where there is a tmpfs: every commit is synced to
/// disk, and the suite makes thousands.
fn world_in_memory() -> Result<World, Failure> {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new().prefix("outpost-sim").tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .map_err(|e| Failure(format!("no directory for the world: {e}")))?;
    let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite3"))?);
    let state = AppState::new(storage.clone() as Arc<dyn Storage>)?;
    Ok(World { dir, state, storage })
}
