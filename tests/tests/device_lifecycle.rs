//! How a device leaves service, end to end over TLS with real `Device`s: lost (revoked, wiped
//! at its next contact), retired (hands in everything, then wipes) and never seen again (its
//! offline lease runs out and its records lock until it syncs).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use outpost_core::net::{Client, ClientConfig, SyncOptions};
use outpost_core::sync::{SyncClient, wire};
use outpost_core::{
    Author, Device, DeviceId, DocId, Error, NewPerson, NewVisit, RiskTier, Section, Setting, Store, SyncOutcome,
    TeamId, WorkerId,
};
use outpost_server::admin::{self, Command};
use outpost_server::auth;
use outpost_server::database::Database;
use outpost_server::signing::ServerKey;
use outpost_server::storage::{Accounts, Departure, Documents, Lifecycle, Role, ScopePolicy};
use outpost_tests::team::{self, ServedTeam, TestClock};
use outpost_tests::world::{PEER, World};

const DAY: i64 = 86_400;

fn sync(device: &Device) -> SyncOutcome {
    let outcome = device.sync_now(Duration::from_secs(30)).unwrap();
    assert!(outcome.complete);
    outcome
}

fn person_and_visit(device: &Device) -> DocId {
    device
        .write(|s| {
            let person = s.create_person(&team::person("Iris Kemp", RiskTier::Low))?;
            s.create_visit(&NewVisit {
                person,
                worker: WorkerId::new("w1")?,
                at: Utc::now(),
                setting: Setting::HomeVisit,
            })
        })
        .unwrap()
}

fn type_goals(device: &Device, visit: &DocId, text: &str) -> outpost_core::Result<()> {
    device
        .write(|s| s.edit_visit(visit, |v| v.splice(Section::Goals, 0, 0, text)))
        .map(drop)
}

fn goals(device: &Device, visit: &DocId) -> String {
    device
        .read(|s| s.visit(visit))
        .unwrap()
        .section(Section::Goals)
        .to_string()
}

/// Runs an admin command against the served team's database, as the CLI does.
fn admin(rig: &ServedTeam, command: Command) -> String {
    let db = Database::Sqlite(rig.world.dir.path().join("server.sqlite3"));
    admin::run(command, rig.world.storage.as_ref(), &db).unwrap()
}

fn store_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", path.display())))
        .filter(|p| p.exists())
        .collect()
}

fn audited(rig: &ServedTeam, action: &str) -> Vec<String> {
    rig.world
        .storage
        .audit_log(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.subject)
        .collect()
}

/// One sync with `credential` straight through the transport, into a scratch store.
fn sync_with(rig: &ServedTeam, credential: &str) -> outpost_core::Result<()> {
    let mut config = ClientConfig::new("127.0.0.1", rig.served.addr.port());
    config.ca_pem = Some(rig.served.ca_pem.clone());
    config.credential = Some(credential.to_string());
    let mut client = Client::new(config).unwrap();
    let author = Author::new(WorkerId::new("w1").unwrap(), DeviceId::new("scratch").unwrap());
    let scratch = rig.world.dir.path().join(format!("scratch-{}.sqlite3", rand_suffix()));
    let store = Arc::new(Mutex::new(Store::open(scratch, author).unwrap()));
    rig.runtime
        .block_on(client.sync(store, SyncOptions::default()))
        .map(drop)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

#[test]
fn a_lost_device_is_revoked_and_wipes_itself_at_its_next_contact() {
    let rig = ServedTeam::start();
    let path = rig.world.dir.path().join("a.sqlite3");
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let visit = person_and_visit(&a);
    sync(&a);
    // Typed after the phone was lost: it must never reach the server.
    type_goals(&a, &visit, "Keys under the mat").unwrap();
    let enrolment = a.enrolment().unwrap();
    let out = admin(
        &rig,
        Command::Revoke {
            device: enrolment.author.device.clone(),
        },
    );
    assert!(out.contains("wipe"), "{out}");
    let log_before = rig.world.storage.log_head().unwrap();

    let err = a.sync_now(Duration::from_secs(30)).unwrap_err();
    assert!(matches!(&err, Error::Revoked(m) if m.contains("wipe")), "{err}");

    // The device is wiped: closed, its files gone, and it says so.
    let status = a.status().unwrap();
    assert!(!status.enrolled);
    let wiped = status.wiped.unwrap();
    assert!(wiped.contains("revoked"), "{wiped}");
    assert!(store_files(&path).is_empty(), "{:?}", store_files(&path));
    assert!(a.enrolment().is_none());
    let err = a.read(|s| s.visit(&visit)).unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.contains("wiped")),
        "{err}"
    );

    // Nothing it sent was stored: the server's log did not move, and a colleague's copy of the
    // visit has none of the unsent text.
    assert_eq!(rig.world.storage.log_head().unwrap(), log_before);
    sync(&b);
    assert_eq!(goals(&b, &visit), "");
    assert_eq!(audited(&rig, "wipe-ordered"), [enrolment.author.device.to_string()]);
    // Its credential stays refused, as a revoked one.
    let err = sync_with(&rig, &enrolment.credential).unwrap_err();
    assert!(matches!(err, Error::Revoked(_)), "{err}");
    assert_eq!(audited(&rig, "wipe-ordered").len(), 1, "the order is audited once");

    // Opened again, the store is empty and unenrolled; enrolled afresh, it holds nothing old.
    drop(a);
    let reopened = Device::open(&path, None).unwrap();
    assert!(reopened.enrolment().is_none());
    assert!(matches!(
        reopened.read(|s| s.revision()),
        Err(Error::Unauthenticated(_))
    ));
    reopened.enrol(rig.server(), &rig.code("w1"), "again").unwrap();
    assert!(matches!(reopened.read(|s| s.visit(&visit)), Err(Error::NotFound(_))));
}

#[test]
fn a_retired_device_hands_in_everything_then_wipes_and_its_credential_is_refused() {
    let rig = ServedTeam::start();
    let path = rig.world.dir.path().join("a.sqlite3");
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let visit = person_and_visit(&a);
    sync(&a);
    // Work not yet sent when the phone is handed in.
    type_goals(&a, &visit, "Walk to the shop").unwrap();
    let second = a
        .write(|s| s.create_person(&team::person("Olu Bello", RiskTier::Medium)))
        .unwrap();
    assert_eq!(a.pending().unwrap().len(), 2);
    let enrolment = a.enrolment().unwrap();
    let device = enrolment.author.device.clone();
    let out = admin(&rig, Command::Retire { device: device.clone() });
    assert!(out.contains("wipe itself"), "{out}");

    let outcome = sync(&a);
    assert!(outcome.progress.retiring && outcome.progress.retired, "{outcome:?}");
    assert_eq!(outcome.progress.docs_pushed, 2);

    // Every pending edit is on the server.
    sync(&b);
    assert_eq!(goals(&b, &visit), "Walk to the shop");
    assert_eq!(b.read(|s| s.person(&second)).unwrap().name.value, "Olu Bello");

    // The device is wiped, and its credential is refused from now on.
    let status = a.status().unwrap();
    assert!(!status.enrolled);
    assert!(status.wiped.unwrap().contains("retired"));
    assert!(store_files(&path).is_empty(), "{:?}", store_files(&path));
    let err = sync_with(&rig, &enrolment.credential).unwrap_err();
    assert!(matches!(err, Error::Retired(_)), "{err}");
    assert_eq!(audited(&rig, "device-retired"), [device.to_string()]);
    let row = rig
        .world
        .storage
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.device == device)
        .unwrap();
    assert!(row.retired_at.is_some() && row.revoked_at.is_none());
}

#[test]
fn a_retiring_device_with_a_record_the_server_refuses_keeps_it_and_takes_no_new_edits() {
    let rig = ServedTeam::start();
    let path = rig.world.dir.path().join("a.sqlite3");
    let a = rig.enrolled("w1", "a.sqlite3");
    let visit = person_and_visit(&a);
    // A person of a team this worker does not belong to: the server refuses it every time.
    let stray = a
        .write(|s| {
            s.create_person(&NewPerson {
                team: TeamId::new("elsewhere")?,
                ..team::person("Not Ours", RiskTier::Low)
            })
        })
        .unwrap();
    let device = a.enrolment().unwrap().author.device;
    admin(&rig, Command::Retire { device: device.clone() });

    let outcome = sync(&a);
    assert!(outcome.progress.retiring && !outcome.progress.retired, "{outcome:?}");
    assert_eq!(outcome.progress.refused.len(), 1);
    // It never said it was ready, so it was not retired, and it keeps what the server lacks.
    assert!(rig.world.storage.retiring(&device).unwrap());
    assert_eq!(a.pending().unwrap(), vec![stray]);
    assert!(!store_files(&path).is_empty());
    let status = a.status().unwrap();
    assert!(status.enrolled && status.retiring && status.wiped.is_none());
    // It shows its records but takes no new edits.
    assert_eq!(goals(&a, &visit), "");
    let err = type_goals(&a, &visit, "more").unwrap_err();
    assert!(matches!(&err, Error::Locked(m) if m.contains("being retired")), "{err}");
    // Another sync changes nothing.
    assert!(!sync(&a).progress.retired);
    assert!(a.status().unwrap().enrolled);
}

#[test]
fn a_device_told_it_was_retired_wipes_only_with_nothing_unsent() {
    // The server recorded the retirement but its answer was lost: the device hears `retired`
    // at its next contact.
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let visit = person_and_visit(&a);
    sync(&a);
    sync(&b);
    for device in [&a, &b] {
        let id = device.enrolment().unwrap().author.device;
        rig.world.storage.request_retirement(&id, 0).unwrap();
        assert!(rig.world.storage.retire(&id, 0).unwrap());
    }

    // Nothing unsent: it wipes.
    let err = a.sync_now(Duration::from_secs(30)).unwrap_err();
    assert!(matches!(err, Error::Retired(_)), "{err}");
    assert!(a.status().unwrap().wiped.is_some());
    assert!(store_files(&rig.world.dir.path().join("a.sqlite3")).is_empty());

    // With an edit the server lacks (which a device that said it was ready cannot have), the
    // store is kept and the app told why.
    type_goals(&b, &visit, "Not handed in").unwrap();
    let err = b.sync_now(Duration::from_secs(30)).unwrap_err();
    assert!(
        matches!(&err, Error::Retired(m) if m.contains("kept on this device")),
        "{err}"
    );
    let status = b.status().unwrap();
    assert!(status.enrolled && status.wiped.is_none());
    assert_eq!(goals(&b, &visit), "Not handed in");
}

#[test]
fn a_lost_answer_to_the_retirement_loses_nothing() {
    // In process, round by round: the device says it is ready only once everything it holds is
    // acknowledged, so losing the server's answer to that loses nothing.
    let world = World::new();
    let team = world.team("t1", ScopePolicy::Team);
    let w1 = world.worker("w1", &team, Role::Worker);
    let phone = world.enrol(&w1, "p1");
    let person = phone
        .store()
        .create_person(&team::person("Iris Kemp", RiskTier::Low))
        .unwrap();
    world.storage.request_retirement(&phone.device.device, 0).unwrap();

    let mut client = SyncClient::new(PEER);
    let mut store = phone.store();
    let round = |client: &mut SyncClient, store: &mut Store, deliver: bool| {
        let bytes = client.next_request(store).unwrap().unwrap();
        let request: wire::Request = wire::decode_one(&bytes, "sync request").unwrap();
        let ready = request.retire_ready;
        let response = world.state.sync.round(&phone.device, request).unwrap();
        if deliver {
            client.receive(store, &response).unwrap();
            client.end_response(store).unwrap();
        } else {
            client.abandon_round();
        }
        ready
    };
    // Round 1 sends the person and hears it is to retire; it is not ready yet.
    assert!(!round(&mut client, &mut store, true));
    assert!(client.progress().retiring);
    assert_eq!(store.sync_status(PEER).unwrap().pending_docs, 0);
    // Round 2 says it is ready; the server retires it, and the answer is lost.
    assert!(round(&mut client, &mut store, false));
    assert!(!client.progress().retired);

    // Everything the device held is on the server, and the device is refused as retired: its
    // next contact makes it wipe, with nothing unsent.
    assert!(world.storage.doc(&person).unwrap().is_some());
    let hash = auth::hash_secret(&phone.credential);
    assert_eq!(world.storage.authenticate(&hash).unwrap(), None);
    let departed = world.storage.departed(&hash, 0).unwrap().unwrap();
    assert_eq!(departed.departure, Departure::Retired);
    assert_eq!(store.sync_status(PEER).unwrap().pending_docs, 0);
    assert!(store.standing().unwrap().retiring);
}

#[test]
fn a_device_away_longer_than_its_lease_locks_until_a_sync_and_still_syncs_while_locked() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let b = rig.enrolled("w2", "b.sqlite3");
    let visit = person_and_visit(&a);
    sync(&a);

    // Just inside fourteen days: still readable. Typed now, not yet sent.
    rig.clock.advance(14 * DAY - 120);
    type_goals(&a, &visit, "Garden on Sundays").unwrap();
    rig.clock.advance(240);
    let err = a.read(|s| s.visit(&visit)).unwrap_err();
    assert!(matches!(&err, Error::Locked(m) if m.contains("offline lease")), "{err}");
    assert!(matches!(type_goals(&a, &visit, "x"), Err(Error::Locked(_))));
    assert!(matches!(a.pending(), Err(Error::Locked(_))));
    let status = a.status().unwrap();
    assert!(status.locked.is_some() && status.enrolled);
    assert_eq!(status.sync.pending_docs, 1);

    // Locked, it still syncs: the edit goes, and the new lease unlocks it.
    let outcome = sync(&a);
    assert_eq!(outcome.progress.docs_pushed, 1);
    assert_eq!(outcome.progress.lease_refused, None);
    assert_eq!(goals(&a, &visit), "Garden on Sundays");
    assert!(a.status().unwrap().locked.is_none());
    sync(&b);
    assert_eq!(goals(&b, &visit), "Garden on Sundays");
}

#[test]
fn a_team_s_lease_can_be_one_day() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let visit = person_and_visit(&a);
    admin(
        &rig,
        Command::SetLease {
            team: TeamId::new("t1").unwrap(),
            days: 1,
        },
    );
    // The lease from enrolment was fourteen days; the next sync brings the team's one day.
    sync(&a);
    rig.clock.advance(DAY - 60);
    assert_eq!(goals(&a, &visit), "");
    rig.clock.advance(120);
    assert!(matches!(a.read(|s| s.visit(&visit)), Err(Error::Locked(_))));
    sync(&a);
    assert_eq!(goals(&a, &visit), "");
}

#[test]
fn a_clock_set_back_before_a_time_seen_locks_the_records() {
    let rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let visit = person_and_visit(&a);
    sync(&a);
    // The phone's own clock, apart from the server's.
    let own = Arc::new(TestClock::default());
    a.set_clock(own.clone()).unwrap();

    own.advance(-DAY);
    let err = a.read(|s| s.visit(&visit)).unwrap_err();
    assert!(matches!(&err, Error::Locked(m) if m.contains("already seen")), "{err}");
    // A sync still works, but the server's time is later still: the clock must be put right.
    sync(&a);
    assert!(matches!(a.read(|s| s.visit(&visit)), Err(Error::Locked(_))));
    own.advance(DAY);
    assert_eq!(goals(&a, &visit), "");

    // A clock that ran ahead (past the lease) and was put back is locked as set back, until
    // a sync restores the server's time.
    own.advance(30 * DAY);
    assert!(matches!(&a.read(|s| s.visit(&visit)), Err(Error::Locked(m)) if m.contains("offline lease")));
    own.advance(-30 * DAY);
    assert!(matches!(&a.read(|s| s.visit(&visit)), Err(Error::Locked(m)) if m.contains("already seen")));
    sync(&a);
    assert_eq!(goals(&a, &visit), "");
}

#[test]
fn a_lease_signed_by_another_key_is_refused() {
    let mut rig = ServedTeam::start();
    let a = rig.enrolled("w1", "a.sqlite3");
    let visit = person_and_visit(&a);
    sync(&a);

    // The server comes back with a key the device was not enrolled with.
    rig.restart_with_key(ServerKey::generate().unwrap());
    let outcome = sync(&a);
    let refused = outcome.progress.lease_refused.unwrap();
    assert!(refused.contains("another key"), "{refused}");
    assert_eq!(goals(&a, &visit), "", "the lease held before stands");

    // So once that lease runs out, syncing with this server does not unlock it.
    rig.clock.advance(15 * DAY);
    assert!(matches!(a.read(|s| s.visit(&visit)), Err(Error::Locked(_))));
    assert!(sync(&a).progress.lease_refused.is_some());
    assert!(matches!(a.read(|s| s.visit(&visit)), Err(Error::Locked(_))));
}
