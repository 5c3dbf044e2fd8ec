//! Devices leaving service on every backend: retirement, wipe orders (recorded once, even when
//! two processes see the revoked device at once) and teams' offline leases.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

use std::sync::Barrier;

use outpost_core::{DeviceId, TeamId, WorkerId};
use outpost_server::Error;
use outpost_server::storage::{DEFAULT_LEASE_DAYS, Departed, Departure, MAX_LEASE_DAYS, Role, ScopePolicy};

use crate::Backend;

const NOW: i64 = 1_700_000_000;

fn device(name: &str) -> DeviceId {
    DeviceId::new(name).unwrap()
}

fn north() -> TeamId {
    TeamId::new("north").unwrap()
}

/// Team `north` with worker `ann` and her devices `d1` (credential `cred-1`) and `d2`
/// (`cred-2`).
fn two_devices(s: &Backend) {
    let ann = WorkerId::new("ann").unwrap();
    s.create_team(&north(), "North", ScopePolicy::Team).unwrap();
    s.add_worker(&ann, "Ann", Role::Worker, &north()).unwrap();
    for n in ["1", "2"] {
        let code = format!("code-{n}");
        s.add_enrolment_code(&ann, code.as_bytes(), NOW + 3600).unwrap();
        let credential = format!("cred-{n}");
        s.enrol(
            code.as_bytes(),
            &device(&format!("d{n}")),
            "phone",
            credential.as_bytes(),
            NOW,
        )
        .unwrap();
    }
}

fn a_device_asked_to_retire_is_refused_once_it_confirms(s: &Backend) {
    two_devices(s);
    assert!(!s.retiring(&device("d1")).unwrap());
    assert!(!s.retire(&device("d1"), NOW).unwrap(), "not asked to retire");
    assert!(s.authenticate(b"cred-1").unwrap().is_some());

    s.request_retirement(&device("d1"), NOW + 10).unwrap();
    s.request_retirement(&device("d1"), NOW + 20).unwrap();
    assert!(s.retiring(&device("d1")).unwrap());
    // Asked, not yet confirmed: it still syncs, to hand its changes in.
    assert!(s.authenticate(b"cred-1").unwrap().is_some());
    assert_eq!(s.departed(b"cred-1", NOW).unwrap(), None);

    assert!(s.retire(&device("d1"), NOW + 30).unwrap());
    assert!(!s.retire(&device("d1"), NOW + 40).unwrap(), "once");
    assert!(!s.retiring(&device("d1")).unwrap());
    assert_eq!(s.authenticate(b"cred-1").unwrap(), None);
    assert_eq!(
        s.departed(b"cred-1", NOW + 50).unwrap(),
        Some(Departed {
            device: device("d1"),
            departure: Departure::Retired,
            first_wipe_order: false,
        })
    );
    let row = s
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.device == device("d1"))
        .unwrap();
    assert_eq!(
        (row.retire_requested_at, row.retired_at),
        (Some(NOW + 10), Some(NOW + 30))
    );

    // The other device is untouched; a retired or unknown one cannot be asked again.
    assert!(s.authenticate(b"cred-2").unwrap().is_some());
    assert!(!s.retiring(&device("d2")).unwrap());
    let err = s.request_retirement(&device("d1"), NOW).unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("retired")), "{err}");
    let err = s.request_retirement(&device("nope"), NOW).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(!s.retiring(&device("nope")).unwrap());
    assert!(!s.retire(&device("nope"), NOW).unwrap());
}

fn a_revoked_device_is_told_to_wipe_and_that_is_recorded_once(s: &Backend) {
    two_devices(s);
    s.request_retirement(&device("d1"), NOW).unwrap();
    s.revoke(&device("d1"), NOW + 5).unwrap();
    assert!(!s.retiring(&device("d1")).unwrap(), "revocation wins");
    assert!(!s.retire(&device("d1"), NOW + 6).unwrap());

    let first = s.departed(b"cred-1", NOW + 10).unwrap().unwrap();
    assert_eq!(
        (first.device.as_str(), first.departure, first.first_wipe_order),
        ("d1", Departure::Revoked, true)
    );
    let again = s.departed(b"cred-1", NOW + 20).unwrap().unwrap();
    assert!(!again.first_wipe_order);
    assert_eq!(s.departed(b"unknown", NOW).unwrap(), None);
    assert_eq!(s.departed(b"cred-2", NOW).unwrap(), None, "d2 is in service");

    let err = s.request_retirement(&device("d1"), NOW).unwrap_err();
    assert!(matches!(&err, Error::Conflict(m) if m.contains("revoked")), "{err}");
}

/// A device revoked after it retired is still told to wipe, as a revoked one.
fn revocation_after_retirement_orders_a_wipe(s: &Backend) {
    two_devices(s);
    s.request_retirement(&device("d1"), NOW).unwrap();
    assert!(s.retire(&device("d1"), NOW + 1).unwrap());
    s.revoke(&device("d1"), NOW + 2).unwrap();
    assert_eq!(
        s.departed(b"cred-1", NOW + 3).unwrap(),
        Some(Departed {
            device: device("d1"),
            departure: Departure::Revoked,
            first_wipe_order: true,
        })
    );
}

/// Two server processes refuse the revoked device's credential at the same moment: only one of
/// them audits the first wipe order.
fn two_processes_record_one_first_wipe_order(s: &Backend) {
    const ROUNDS: usize = 8;
    let ann = WorkerId::new("ann").unwrap();
    s.create_team(&north(), "North", ScopePolicy::Team).unwrap();
    s.add_worker(&ann, "Ann", Role::Worker, &north()).unwrap();
    for n in 0..ROUNDS {
        let (code, credential) = (format!("code-{n}"), format!("cred-{n}"));
        s.add_enrolment_code(&ann, code.as_bytes(), NOW + 3600).unwrap();
        let id = device(&format!("d{n}"));
        s.enrol(code.as_bytes(), &id, "phone", credential.as_bytes(), NOW)
            .unwrap();
        s.revoke(&id, NOW + 1).unwrap();
    }
    let processes = [s.reopen(), s.reopen()];
    let start = Barrier::new(processes.len());
    let outcomes: Vec<Vec<Option<Departed>>> = std::thread::scope(|scope| {
        let running: Vec<_> = processes
            .iter()
            .map(|storage| {
                let start = &start;
                scope.spawn(move || {
                    (0..ROUNDS)
                        .map(|n| {
                            start.wait();
                            storage.departed(format!("cred-{n}").as_bytes(), NOW + 2)
                        })
                        .collect::<Result<Vec<_>, Error>>()
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap().unwrap()).collect()
    });
    for (n, seen) in outcomes[0].iter().zip(&outcomes[1]).enumerate() {
        let seen = [seen.0.as_ref().unwrap(), seen.1.as_ref().unwrap()];
        assert!(seen.iter().all(|d| d.departure == Departure::Revoked), "{seen:?}");
        let first = seen.iter().filter(|d| d.first_wipe_order).count();
        assert_eq!(first, 1, "round {n}: {seen:?}");
    }
}

fn a_team_s_lease_is_fourteen_days_until_set(s: &Backend) {
    two_devices(s);
    assert_eq!(s.lease_days(&north()).unwrap(), DEFAULT_LEASE_DAYS);
    s.set_lease_days(&north(), 1).unwrap();
    assert_eq!(s.lease_days(&north()).unwrap(), 1);
    for days in [0, MAX_LEASE_DAYS + 1, u32::MAX] {
        let err = s.set_lease_days(&north(), days).unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest { what, .. } if what == "lease days"),
            "{err}"
        );
    }
    assert_eq!(s.lease_days(&north()).unwrap(), 1, "a refused value changes nothing");
    let south = TeamId::new("south").unwrap();
    assert!(matches!(s.set_lease_days(&south, 7), Err(Error::NotFound(_))));
    assert!(matches!(s.lease_days(&south), Err(Error::NotFound(_))));
}

fn each_team_keeps_its_own_lease(s: &Backend) {
    two_devices(s);
    let south = TeamId::new("south").unwrap();
    s.create_team(&south, "South", ScopePolicy::Allocated).unwrap();
    s.set_lease_days(&north(), MAX_LEASE_DAYS).unwrap();
    assert_eq!(s.lease_days(&north()).unwrap(), MAX_LEASE_DAYS);
    assert_eq!(s.lease_days(&south).unwrap(), DEFAULT_LEASE_DAYS);
    // Read back by another process, as every server process enforces it.
    assert_eq!(s.reopen().lease_days(&north()).unwrap(), MAX_LEASE_DAYS);
}

on_every_backend!(
    a_device_asked_to_retire_is_refused_once_it_confirms,
    a_revoked_device_is_told_to_wipe_and_that_is_recorded_once,
    revocation_after_retirement_orders_a_wipe,
    two_processes_record_one_first_wipe_order,
    a_team_s_lease_is_fourteen_days_until_set,
    each_team_keeps_its_own_lease,
);
