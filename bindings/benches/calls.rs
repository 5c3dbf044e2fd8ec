//! The Rust side of the FFI call-cost figures: the same calls the Kotlin and Python benches make
//! through the generated bindings (a trivial getter; a caseload of 300 people), made directly.
//! `cargo bench -p outpost-bindings --bench calls`; the Kotlin and Python figures come from
//! `scripts/bench-ffi.sh`.

use std::sync::Arc;

use criterion::Criterion;
use outpost::{NewPerson, Outpost, RiskTier};
use outpost_core::{Author, DeviceId, Enrolment, Server, TeamId, WorkerId};

const PEOPLE: usize = 300;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outpost = match enrolled_store(dir.path()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("calls bench: could not prepare the store: {e}");
            std::process::exit(1);
        }
    };
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("ffi/rust/schema_version", |b| b.iter(outpost::schema_version));
    c.bench_function("ffi/rust/enrolment", |b| b.iter(|| outpost.enrolment()));
    c.bench_function("ffi/rust/caseload_300", |b| {
        b.iter(|| {
            let rows = outpost.caseload().expect("caseload");
            assert_eq!(rows.len(), PEOPLE);
            rows
        })
    });
    c.final_summary();
}

/// A store enrolled without a server (the enrolment written as enrolling writes it), holding
/// 300 people allocated to its worker.
fn enrolled_store(dir: &std::path::Path) -> Result<Arc<Outpost>, Box<dyn std::error::Error>> {
    let path = dir.join("bench.sqlite3");
    Enrolment {
        server: Server {
            host: "outpost.invalid".into(),
            port: 443,
            ca_pem: None,
            pins: Vec::new(),
        },
        author: Author::new(WorkerId::new("w1")?, DeviceId::new("bench-phone")?),
        team: TeamId::new("t1")?,
        lead: false,
        credential: "unused".into(),
        enrolled_at: "2026-11-21T00:00:00Z".into(),
    }
    .save(&path, None)?;
    let outpost = Outpost::open(path.display().to_string(), None)?;
    for i in 0..PEOPLE {
        outpost.create_person(NewPerson {
            name: format!("Person {i:03}"),
            preferred_name: None,
            date_of_birth: None,
            nhs_number: None,
            address: Some(format!("{i} Chapel Row")),
            allocated_workers: Vec::new(),
            risk: RiskTier::Medium,
        })?;
    }
    Ok(outpost)
}
