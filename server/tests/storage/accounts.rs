//! Accounts on every backend: teams, workers, enrolment (one device per code, even when two
//! processes spend it at once), devices, actors and the audit log.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

use std::sync::Barrier;

use outpost_core::{DeviceId, TeamId, WorkerId};
use outpost_server::Error;
use outpost_server::storage::{ActorOwner, AuditEntry, Device, DeviceRow, Role, ScopePolicy, SyncWrite};

use crate::Backend;

const NOW: i64 = 1_700_000_000;
/// What every refused code is answered with, whatever the reason.
const CODE_REFUSED: &str = "enrolment code is unknown, used or expired";

fn team() -> TeamId {
    TeamId::new("north").unwrap()
}

fn worker() -> WorkerId {
    WorkerId::new("ann").unwrap()
}

fn device(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

/// Team `north` (allocated scope), lead `ann`, and a code `code-1` for her valid for an hour
/// from NOW.
fn with_code(s: &Backend) {
    s.create_team(&team(), "North", ScopePolicy::Allocated).unwrap();
    s.add_worker(&worker(), "Ann", Role::Lead, &team()).unwrap();
    s.add_enrolment_code(&worker(), b"code-1", NOW + 3600).unwrap();
}

fn is_code_refused<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Unauthenticated(m)) if m == CODE_REFUSED)
}

fn a_code_enrols_one_device_once(s: &Backend) {
    with_code(s);
    let enrolled = s
        .enrol(b"code-1", &device("d1"), "Ann's phone", b"cred-1", NOW)
        .unwrap();
    let expected = Device {
        device: device("d1"),
        worker: worker(),
        role: Role::Lead,
        team: team(),
        scope: ScopePolicy::Allocated,
    };
    assert_eq!(enrolled, expected);
    assert_eq!(s.authenticate(b"cred-1").unwrap(), Some(expected));
    assert_eq!(s.authenticate(b"cred-2").unwrap(), None);

    let again = s.enrol(b"code-1", &device("d2"), "Ann's tablet", b"cred-2", NOW);
    assert!(is_code_refused(&again), "{again:?}");
    let unknown = s.enrol(b"code-9", &device("d2"), "Ann's tablet", b"cred-2", NOW);
    assert!(is_code_refused(&unknown), "{unknown:?}");
    // Nothing of the refused attempts was stored.
    assert_eq!(s.devices().unwrap().len(), 1);
}

fn an_expired_code_is_refused_with_the_same_message(s: &Backend) {
    with_code(s);
    let late = s.enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW + 3600);
    assert!(is_code_refused(&late), "{late:?}");
    assert!(s.devices().unwrap().is_empty());
    // The refusal did not spend it: an earlier clock still may.
    s.enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW + 3599)
        .unwrap();
}

fn a_device_enrolled_twice_is_a_conflict_and_leaves_the_code_unspent(s: &Backend) {
    with_code(s);
    s.add_enrolment_code(&worker(), b"code-2", NOW + 3600).unwrap();
    s.enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW).unwrap();

    let err = s.enrol(b"code-2", &device("d1"), "tablet", b"cred-2", NOW).unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("d1")), "{err}");
    assert_eq!(s.authenticate(b"cred-2").unwrap(), None);
    // The refused enrolment rolled back whole: the code still enrols another device.
    s.enrol(b"code-2", &device("d2"), "tablet", b"cred-2", NOW).unwrap();
    assert_eq!(s.authenticate(b"cred-2").unwrap().map(|d| d.device), Some(device("d2")));
}

/// Two server processes spend one code at the same moment: exactly one device enrols, and the
/// other is refused as a spent code would be.
fn two_processes_spending_one_code_enrol_one_device(s: &Backend) {
    const CODES: usize = 12;
    s.create_team(&team(), "North", ScopePolicy::Team).unwrap();
    s.add_worker(&worker(), "Ann", Role::Worker, &team()).unwrap();
    for n in 0..CODES {
        s.add_enrolment_code(&worker(), format!("code-{n}").as_bytes(), NOW + 3600)
            .unwrap();
    }
    let processes = [s.reopen(), s.reopen()];
    let start = Barrier::new(processes.len());
    let outcomes: Vec<Vec<Result<Device, Error>>> = std::thread::scope(|scope| {
        let running: Vec<_> = processes
            .iter()
            .enumerate()
            .map(|(p, storage)| {
                let start = &start;
                scope.spawn(move || {
                    (0..CODES)
                        .map(|n| {
                            start.wait();
                            let (code, id, cred) = (format!("code-{n}"), format!("d{n}-p{p}"), format!("cred-{n}-{p}"));
                            storage.enrol(code.as_bytes(), &device(&id), "phone", cred.as_bytes(), NOW)
                        })
                        .collect()
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });

    for (n, results) in outcomes[0].iter().zip(&outcomes[1]).enumerate() {
        let results = [results.0, results.1];
        let enrolled: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(enrolled.len(), 1, "code-{n}: {results:?}");
        let refused = results.iter().find(|r| r.is_err()).unwrap();
        assert!(is_code_refused(refused), "code-{n}: {refused:?}");
    }
    assert_eq!(s.devices().unwrap().len(), CODES);
}

fn accounts_name_what_is_missing_or_taken(s: &Backend) {
    with_code(s);
    let elsewhere = TeamId::new("south").unwrap();
    let bob = WorkerId::new("bob").unwrap();

    let err = s.create_team(&team(), "North again", ScopePolicy::Team).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let err = s.add_worker(&bob, "Bob", Role::Worker, &elsewhere).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("south")), "{err}");
    let err = s.add_worker(&worker(), "Ann", Role::Worker, &team()).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let err = s.add_enrolment_code(&bob, b"code-2", NOW).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("bob")), "{err}");
    let err = s.set_scope(&elsewhere, ScopePolicy::Team).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");

    s.set_scope(&team(), ScopePolicy::Team).unwrap();
    let enrolled = s.enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW).unwrap();
    assert_eq!(enrolled.scope, ScopePolicy::Team);
}

fn a_worker_is_found_with_their_role_and_team(s: &Backend) {
    with_code(s);
    let south = TeamId::new("south").unwrap();
    let bob = WorkerId::new("bob").unwrap();
    s.create_team(&south, "South", ScopePolicy::Team).unwrap();
    s.add_worker(&bob, "Bob", Role::Worker, &south).unwrap();

    assert_eq!(s.worker(&worker()).unwrap(), Some((Role::Lead, team())));
    assert_eq!(s.worker(&bob).unwrap(), Some((Role::Worker, south)));
    assert_eq!(s.worker(&WorkerId::new("nobody").unwrap()).unwrap(), None);
}

fn a_revoked_device_no_longer_authenticates(s: &Backend) {
    with_code(s);
    s.enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW).unwrap();
    s.touch_device(&device("d1"), NOW + 10).unwrap();

    s.revoke(&device("d1"), NOW + 20).unwrap();
    s.revoke(&device("d1"), NOW + 30).unwrap();
    assert_eq!(s.authenticate(b"cred-1").unwrap(), None);
    assert_eq!(
        s.devices().unwrap(),
        vec![DeviceRow {
            device: device("d1"),
            worker: worker(),
            label: "phone".into(),
            enrolled_at: NOW,
            last_sync_at: Some(NOW + 10),
            revoked_at: Some(NOW + 20),
            retire_requested_at: None,
            retired_at: None,
        }]
    );
    let err = s.revoke(&device("nope"), NOW).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err = s.touch_device(&device("nope"), NOW).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

/// Oldest enrolment first; devices enrolled in the same second by id, byte by byte (upper case
/// before lower, '-' before digits), which a database's locale collation would order otherwise.
fn devices_list_in_enrolment_order_then_by_id(s: &Backend) {
    with_code(s);
    let enrolments = [
        ("d-b", NOW + 5),
        ("dA", NOW + 5),
        ("d1", NOW + 5),
        ("Z9", NOW + 5),
        ("zz", NOW),
    ];
    for (n, (id, at)) in enrolments.into_iter().enumerate() {
        let code = format!("code-x{n}");
        s.add_enrolment_code(&worker(), code.as_bytes(), NOW + 3600).unwrap();
        s.enrol(
            code.as_bytes(),
            &device(id),
            "phone",
            format!("cred-{id}").as_bytes(),
            at,
        )
        .unwrap();
    }
    let rows = s.devices().unwrap();
    let ids: Vec<&str> = rows.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(ids, ["zz", "Z9", "d-b", "d1", "dA"]);
    assert!(rows.iter().all(|d| d.last_sync_at.is_none() && d.revoked_at.is_none()));
}

fn actors_belong_to_a_device_or_to_the_server(s: &Backend) {
    with_code(s);
    s.enrol(b"code-1", &device("d1"), "phone", b"cred-1", NOW).unwrap();
    let first_use = SyncWrite {
        actors: vec![b"actor-d".to_vec()],
        ..SyncWrite::default()
    };
    s.write(Some(&device("d1")), &first_use).unwrap();

    assert_eq!(s.actor_owner(b"actor-x").unwrap(), None);
    assert_eq!(
        s.actor_owner(b"actor-d").unwrap(),
        Some(ActorOwner::Device(device("d1")))
    );
    s.register_server_actor(b"actor-s", NOW).unwrap();
    s.register_server_actor(b"actor-s", NOW + 1).unwrap();
    assert_eq!(s.actor_owner(b"actor-s").unwrap(), Some(ActorOwner::Server));
    let err = s.register_server_actor(b"actor-d", NOW).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(
        s.actor_owner(b"actor-d").unwrap(),
        Some(ActorOwner::Device(device("d1"))),
        "the refused registration changed nothing"
    );
}

fn entry(at: i64, action: &str) -> AuditEntry {
    AuditEntry {
        at,
        who: "admin".into(),
        action: action.into(),
        subject: "north".into(),
        detail: String::new(),
        from: String::new(),
    }
}

fn the_audit_log_reads_newest_first(s: &Backend) {
    with_code(s);
    for (at, action) in [
        (NOW, "create-team"),
        (NOW + 1, "add-worker"),
        (NOW + 1, "revoke-device"),
    ] {
        s.audit(&entry(at, action)).unwrap();
    }
    let actions: Vec<String> = s.audit_log(2).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["revoke-device", "add-worker"]);
}

fn the_audit_log_keeps_every_field_and_honours_its_limit(s: &Backend) {
    assert!(s.audit_log(10).unwrap().is_empty());
    let full = AuditEntry {
        at: NOW,
        who: "ann".into(),
        action: "sign-in".into(),
        subject: "ann".into(),
        detail: "from the review pages".into(),
        from: "192.0.2.7".into(),
    };
    s.audit(&full).unwrap();
    s.audit(&entry(NOW + 1, "create-team")).unwrap();

    assert!(s.audit_log(0).unwrap().is_empty());
    assert_eq!(
        s.audit_log(10).unwrap(),
        vec![entry(NOW + 1, "create-team"), full.clone()]
    );
    // Another process sees the same log, and appends after it.
    s.reopen().audit(&entry(NOW + 2, "revoke-device")).unwrap();
    let actions: Vec<String> = s.audit_log(usize::MAX).unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["revoke-device", "create-team", "sign-in"]);
}

on_every_backend!(
    a_code_enrols_one_device_once,
    an_expired_code_is_refused_with_the_same_message,
    a_device_enrolled_twice_is_a_conflict_and_leaves_the_code_unspent,
    two_processes_spending_one_code_enrol_one_device,
    accounts_name_what_is_missing_or_taken,
    a_worker_is_found_with_their_role_and_team,
    a_revoked_device_no_longer_authenticates,
    devices_list_in_enrolment_order_then_by_id,
    actors_belong_to_a_device_or_to_the_server,
    the_audit_log_reads_newest_first,
    the_audit_log_keeps_every_field_and_honours_its_limit,
);
