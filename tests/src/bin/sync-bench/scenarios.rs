//! The single-device scenarios, each against the seeded server over loopback TLS with the
//! fault proxy in between (it counts the bytes on the wire, and plays the rural link).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use outpost_core::PersonId;
use outpost_core::net::{Client, SyncOptions, SyncReport};
use outpost_server::storage::Documents;
use outpost_tests::caseload::SEARCH_RARE;
use outpost_tests::proxy::{Fault, FaultProxy};
use outpost_tests::world::{Phone, Served, World};

use crate::report::{Row, bytes, ratio, secs};
use crate::setup::{DaysWork, Result, Seeded, pull_floor, write_days_work};

/// A day's work: eight visits, each typed as 300 splices saved one at a time (an app that
/// saves every keystroke burst), then submitted for review.
pub const DAY_VISITS: usize = 8;
pub const DAY_SPLICES: usize = 300;

/// The weak rural link: 100 kbit/s each way, 400 ms round trip.
const RURAL_BITS_PER_SEC: u64 = 100_000;
const RURAL_RTT: Duration = Duration::from_millis(400);
/// Round trips nothing can save on a new connection: TCP's handshake, TLS 1.3's (full or
/// resumed, without early data), and the one sync round.
const RURAL_ROUND_TRIPS: u32 = 3;

pub struct Bench {
    pub seeded: Seeded,
    pub world: World,
    pub served: Served,
    pub proxy: FaultProxy,
}

impl Bench {
    /// Serves a copy of the seeded server over TLS with the proxy in front. Call inside a runtime.
    pub async fn start(seeded: Seeded) -> Result<Self> {
        let world = seeded.world()?;
        let served = world.serve();
        let proxy = FaultProxy::start(served.addr).await?;
        Ok(Self {
            seeded,
            world,
            served,
            proxy,
        })
    }

    pub fn phone(&self, name: &str) -> Phone {
        self.world.enrol(&self.seeded.worker, name)
    }

    /// A client with no TLS session yet, talking through the proxy.
    pub fn client(&self, phone: &Phone) -> Client {
        phone.client(self.proxy.addr(), &self.served.ca_pem)
    }

    /// A phone that has pulled the whole caseload through the proxy, as it is now configured.
    pub async fn pulled(&self, name: &str) -> Result<(Phone, Client)> {
        let phone = self.phone(name);
        let mut client = self.client(&phone);
        let started = Instant::now();
        let report = client.sync(phone.shared.clone(), SyncOptions::default()).await?;
        eprintln!(
            "{name}: pulled {} documents in {} ({} rounds)",
            report.progress.docs_received,
            secs(started.elapsed()),
            report.rounds
        );
        Ok((phone, client))
    }

    /// The people on the bench worker's own caseload, for the day's visits.
    fn people(&self, phone: &Phone) -> Result<Vec<PersonId>> {
        let people: Vec<PersonId> = phone
            .store()
            .caseload(&self.seeded.worker)?
            .into_iter()
            .map(|row| row.person)
            .collect();
        if people.is_empty() {
            return Err(format!("{} has nobody allocated in the caseload", self.seeded.worker).into());
        }
        Ok(people)
    }

    /// Syncs and returns the report, the time it took, and the wire bytes each way.
    async fn timed_sync(&self, client: &mut Client, phone: &Phone) -> Result<(SyncReport, Duration, u64, u64)> {
        let (up, down) = self.proxy.bytes();
        let started = Instant::now();
        let report = client.sync(phone.shared.clone(), SyncOptions::default()).await?;
        let took = started.elapsed();
        let (up2, down2) = self.proxy.bytes();
        Ok((report, took, up2 - up, down2 - down))
    }

    fn write_day(&self, phone: &Phone, people: &[PersonId], seed: u64) -> Result<(DaysWork, u64)> {
        let mut store = phone.store();
        let started = Instant::now();
        let work = write_days_work(
            &mut store,
            people,
            &self.seeded.worker,
            DAY_VISITS,
            DAY_SPLICES,
            1,
            seed,
        )?;
        let floor = work.floor_bytes(&mut store)?;
        eprintln!(
            "typed a day's work: {} visits, {} splices in {} durable saves, {} characters, in {}; push floor {} bytes",
            work.visits,
            work.splices,
            work.saves,
            work.chars,
            secs(started.elapsed()),
            bytes(floor)
        );
        Ok((work, floor))
    }
}

fn expect_pushed(report: &SyncReport, work: &DaysWork) -> Result<()> {
    if report.progress.docs_pushed != work.docs.len() || !report.progress.refused.is_empty() {
        return Err(format!(
            "pushed {} of {} documents; refused: {:?}",
            report.progress.docs_pushed,
            work.docs.len(),
            report.progress.refused
        )
        .into());
    }
    Ok(())
}

/// A fresh device pulls the whole caseload: the time until it is usable (listed, a record
/// opens, search finds it) and until every document is loaded and verified; bytes against the
/// sum of the documents' saved bytes.
pub async fn pull(bench: &Bench, runs: usize) -> Result<()> {
    let mut usable = Row {
        scenario: String::new(),
        runs,
        target: "< 2 s".into(),
        ..Row::default()
    };
    let mut verified = Row {
        runs,
        target: "—".into(),
        ..Row::default()
    };
    let mut first_records = Vec::new();
    let (mut docs, mut floor) = (0, 0);
    for run in 0..runs {
        let phone = bench.phone(&format!("pull-{run}"));
        (docs, floor) = pull_floor(&bench.world.storage, &phone.device)?;
        let mut client = bench.client(&phone);
        let first = Arc::new(Mutex::new(None));
        let started = Instant::now();
        let options = SyncOptions {
            on_progress: Some(Arc::new({
                let first = Arc::clone(&first);
                move |progress: &outpost_core::sync::Progress| {
                    if progress.docs_received > 0 {
                        first
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(started.elapsed());
                    }
                }
            })),
            ..SyncOptions::default()
        };
        let (up, down) = bench.proxy.bytes();
        let report = client.sync(phone.shared.clone(), options).await?;
        let synced = started.elapsed();
        let (up2, down2) = bench.proxy.bytes();

        // Usable: the team's caseload and the worker's own list, a search, a record opened.
        {
            let mut store = phone.store();
            let listed = store.team_caseload(&bench.seeded.team)?.len();
            let own = store.caseload(&bench.seeded.worker)?.len();
            let hits = store.search(SEARCH_RARE, 50)?;
            let hit = hits.first().ok_or("search found nothing after the pull")?;
            store.visit(&hit.visit)?;
            if listed != bench.seeded.summary.people || own == 0 {
                return Err(format!("listed {listed} people ({own} allocated) after the pull").into());
            }
        }
        let usable_at = started.elapsed();
        // Verified: every document received whole is loaded and checked (Automerge verifies
        // every change hash, and the heads must be the ones sent), its index rewritten from
        // the document itself, and every document in scope is here at the server's heads.
        {
            let mut store = phone.store();
            let check = store.verify_received(usize::MAX)?;
            if !check.removed.is_empty() || check.remaining != 0 {
                return Err(format!("verification found {check:?}").into());
            }
            let scope: Vec<PersonId> = bench.world.storage.scope(&phone.device)?.into_iter().collect();
            let mut theirs: Vec<_> = bench
                .world
                .storage
                .people_docs(&scope)?
                .into_iter()
                .map(|(id, doc)| (id, doc.heads))
                .collect();
            let mut ours = store.all_heads()?;
            theirs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            ours.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            if ours != theirs || ours.len() != docs {
                return Err(format!("the device holds {} documents, the server {}", ours.len(), theirs.len()).into());
            }
        }
        let verified_at = started.elapsed();
        let first_at = first.lock().unwrap_or_else(PoisonError::into_inner).unwrap_or(synced);
        eprintln!(
            "pull {run}: first documents committed {}, sync done {}, usable {}, verified {}; {} rounds, {} docs",
            secs(first_at),
            secs(synced),
            secs(usable_at),
            secs(verified_at),
            report.rounds,
            report.progress.docs_received
        );
        first_records.push(first_at);
        for row in [&mut usable, &mut verified] {
            row.rounds.push(report.rounds);
            row.request.push(report.request_body_bytes);
            row.response.push(report.response_body_bytes);
            row.wire_up.push(up2 - up);
            row.wire_down.push(down2 - down);
        }
        usable.times.push(usable_at);
        verified.times.push(verified_at);
    }
    // The index rows sent beside the documents, reported apart from the ratio.
    let index_bytes = {
        let conn = rusqlite::Connection::open(bench.world.dir.path().join("server.sqlite3"))?;
        conn.query_row(
            "SELECT coalesce(sum(length(index_rows)), 0) FROM documents",
            [],
            |row| row.get::<_, i64>(0),
        )? as u64
    };
    let response = crate::report::median(&usable.response).saturating_sub(index_bytes);
    let wire = crate::report::median(&usable.wire_down);
    usable.scenario = format!(
        "fresh device pulls the caseload ({} documents): listed, a record opens, search works \
         (first documents committed after {})",
        bytes(docs as u64),
        crate::report::time_range(&first_records)
    );
    usable.floor = format!("{} (saved bytes)", bytes(floor));
    usable.against_floor = format!(
        "response body less the index rows **{:.3}x** (target ≤ 1.1x); index rows sent beside \
         them {} bytes ({:.2}x the floor, reported apart); TLS and HTTP add {:.1}% on the wire",
        ratio(response, floor),
        bytes(index_bytes),
        ratio(index_bytes, floor),
        (ratio(wire, response + index_bytes) - 1.0) * 100.0
    );
    verified.scenario = "the same pull: every document loaded and verified".into();
    verified.floor = usable.floor.clone();
    verified.against_floor =
        "documents arrive with their index rows and are usable at once; `verify_received` then loads and checks each one".into();
    usable.print();
    verified.print();
    Ok(())
}

/// A day's work pushed: rounds and request bytes against the push floor.
pub async fn days_work(bench: &Bench, runs: usize) -> Result<()> {
    let (phone, mut client) = bench.pulled("days-work").await?;
    let people = bench.people(&phone)?;
    let mut row = Row {
        runs,
        target: "1 round".into(),
        ..Row::default()
    };
    let mut floors = Vec::new();
    let mut splices = 0;
    for run in 0..runs {
        let (work, floor) = bench.write_day(&phone, &people, 100 + run as u64)?;
        splices = work.splices;
        // The phone comes back into signal: a new connection (its TLS session resumes).
        client.disconnect();
        let (report, took, up, down) = bench.timed_sync(&mut client, &phone).await?;
        expect_pushed(&report, &work)?;
        floors.push(floor);
        row.rounds.push(report.rounds);
        row.times.push(took);
        row.request.push(report.request_body_bytes);
        row.response.push(report.response_body_bytes);
        row.wire_up.push(up);
        row.wire_down.push(down);
    }
    let ratios: Vec<f64> = row.request.iter().zip(&floors).map(|(r, f)| ratio(*r, *f)).collect();
    row.scenario = format!(
        "a day's work pushed: {DAY_VISITS} visits typed offline ({} splices) and their reviews",
        bytes(splices as u64)
    );
    row.floor = format!("{} (push floor, median)", bytes(crate::report::median(&floors)));
    row.against_floor = format!(
        "request body **{:.3}x** (target ≤ 1.2x; each run: {})",
        median_f64(&ratios),
        listed(&ratios)
    );
    row.print();
    Ok(())
}

/// A sync with nothing to exchange, on a device holding the whole caseload.
pub async fn noop(bench: &Bench, runs: usize) -> Result<()> {
    let (phone, mut client) = bench.pulled("noop").await?;
    let mut kept = Row {
        runs,
        target: "< 1 KB payload each way".into(),
        floor: "—".into(),
        ..Row::default()
    };
    for _ in 0..runs {
        let (report, took, up, down) = bench.timed_sync(&mut client, &phone).await?;
        if report.progress.docs_pushed + report.progress.docs_received != 0 {
            return Err(format!("a no-op sync moved documents: {:?}", report.progress).into());
        }
        kept.rounds.push(report.rounds);
        kept.times.push(took);
        kept.request.push(report.request_body_bytes);
        kept.response.push(report.response_body_bytes);
        kept.wire_up.push(up);
        kept.wire_down.push(down);
    }
    let mut cold = Row {
        runs: 1,
        target: kept.target.clone(),
        floor: "—".into(),
        ..Row::default()
    };
    let mut fresh = bench.client(&phone);
    let (report, took, up, down) = bench.timed_sync(&mut fresh, &phone).await?;
    cold.rounds.push(report.rounds);
    cold.times.push(took);
    cold.request.push(report.request_body_bytes);
    cold.response.push(report.response_body_bytes);
    cold.wire_up.push(up);
    cold.wire_down.push(down);
    let verdict = |row: &Row| {
        let (up, down) = (
            crate::report::median(&row.request),
            crate::report::median(&row.response),
        );
        if up < 1024 && down < 1024 { "met" } else { "**not met**" }
    };
    kept.scenario = format!(
        "no-op sync of the caseload ({} documents held), connection kept alive",
        bytes(phone.store().all_heads()?.len() as u64)
    );
    kept.against_floor = format!("payload {}", verdict(&kept));
    cold.scenario = "the same no-op on a new connection (full TLS handshake)".into();
    cold.against_floor = format!("payload {}; the handshake is most of the wire bytes", verdict(&cold));
    kept.print();
    cold.print();
    Ok(())
}

/// The day's work over a weak rural link, on a new connection (cold: full TLS handshake) and
/// on a new connection that resumes the TLS session (warm), each beside its floor.
pub async fn rural(bench: &Bench, runs: usize) -> Result<()> {
    let (phone, setup_client) = bench.pulled("rural").await?;
    drop(setup_client);
    let people = bench.people(&phone)?;
    bench.proxy.set_fault(Fault::link(RURAL_BITS_PER_SEC, RURAL_RTT));
    let rate = RURAL_BITS_PER_SEC as f64 / 8.0;
    let floor_time = |bytes: u64| RURAL_RTT * RURAL_ROUND_TRIPS + Duration::from_secs_f64(bytes as f64 / rate);
    let label = format!("{} kbit/s, {} ms RTT", RURAL_BITS_PER_SEC / 1000, RURAL_RTT.as_millis());
    let mut rows = [
        (Row { runs, ..Row::default() }, Vec::new(), Vec::new()),
        (
            Row {
                runs,
                target: "within 1.5x of its floor".into(),
                ..Row::default()
            },
            Vec::new(),
            Vec::new(),
        ),
    ];
    for run in 0..runs {
        // Cold: a client that has never connected, so a full TLS handshake.
        let mut client = bench.client(&phone);
        for (warm, (row, floors, ratios)) in rows.iter_mut().enumerate() {
            let (work, floor) = bench.write_day(&phone, &people, 1_000 + 2 * run as u64 + warm as u64)?;
            client.disconnect();
            let (report, took, up, down) = bench.timed_sync(&mut client, &phone).await?;
            expect_pushed(&report, &work)?;
            let resumed = report.tls_resumed == 1;
            if report.connections != 1 || resumed != (warm == 1) {
                return Err(format!(
                    "expected one {} connection, got {} ({} resumed)",
                    if warm == 1 { "resumed" } else { "full-handshake" },
                    report.connections,
                    report.tls_resumed
                )
                .into());
            }
            let floor_took = floor_time(floor);
            eprintln!(
                "rural {run} {}: {} against a floor of {} ({} bytes)",
                if warm == 1 { "warm" } else { "cold" },
                secs(took),
                secs(floor_took),
                bytes(floor)
            );
            floors.push(floor_took);
            ratios.push(took.as_secs_f64() / floor_took.as_secs_f64());
            row.rounds.push(report.rounds);
            row.times.push(took);
            row.request.push(report.request_body_bytes);
            row.response.push(report.response_body_bytes);
            row.wire_up.push(up);
            row.wire_down.push(down);
        }
    }
    bench.proxy.set_fault(Fault::none());
    for (warm, (row, floors, ratios)) in rows.iter_mut().enumerate() {
        let kind = if warm == 1 {
            "warm: new TCP connection, resumed TLS session"
        } else {
            "cold: new TCP connection, full TLS handshake"
        };
        row.scenario = format!("the day's work over a rural link ({label}), {kind}");
        if warm == 0 {
            row.target = "—".into();
        }
        row.floor = format!(
            "{} ({RURAL_ROUND_TRIPS} RTT + push floor at link rate, median)",
            secs(crate::report::median(floors))
        );
        row.against_floor = format!(
            "time **{:.2}x** its floor (each run: {})",
            median_f64(ratios),
            listed(ratios)
        );
        row.print();
    }
    Ok(())
}

fn median_f64(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

fn listed(ratios: &[f64]) -> String {
    ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", ")
}
