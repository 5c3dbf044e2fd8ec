//! The review queue's server time with 2,000 submitted visits: the whole request through the
//! server's router (session lookup, the listing query, rendering), for the first page, a deep
//! page, a name filter and the safeguarding filter; and a visit's page, which loads the
//! document to show authorship.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::Criterion;
use outpost_core::sync::{listing, summarise};
use outpost_core::{
    Author, DeviceId, DocId, Document, NewPerson, NewVisit, Record, ReviewAction, RiskTier, Section, Setting, TeamId,
    WorkerId,
};
use outpost_server::AppState;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{
    Accounts, DocWrite, Documents, PersonScope, Role, ScopePolicy, Storage, SyncWrite, WebAccounts,
};
use outpost_server::web::sign_in::hash_password;
use outpost_tests::pages::Browser;

const VISITS: usize = 2_000;
const PEOPLE: usize = 200;
const PASSWORD: &str = "bench lead password";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if let Err(e) = benches(&mut c) {
        eprintln!("review queue bench failed: {e}");
        std::process::exit(1);
    }
    c.final_summary();
}

fn benches(c: &mut Criterion) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = Arc::new(SqliteStorage::open(dir.path().join("server.sqlite3"))?);
    let first_visit = seed(&storage)?;
    let state = AppState::new(storage.clone() as Arc<dyn Storage>)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut browser = Browser::new(state);
    let signed_in = runtime.block_on(browser.sign_in("lead", PASSWORD));
    if !signed_in.status.is_redirection() {
        return Err(format!("sign-in failed: {}", signed_in.status).into());
    }

    let mut group = c.benchmark_group("review_pages_2000_visits");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    for (name, path, expect) in [
        ("queue_first_page", "/review".to_string(), "2000 visits"),
        ("queue_page_40", "/review?page=40".to_string(), "page 40 of 80"),
        (
            "queue_person_filter",
            "/review?person=person%2017".to_string(),
            "visits",
        ),
        ("queue_safeguarding", "/review?safeguarding=1".to_string(), "200 visits"),
        ("visit_page", format!("/review/visits/{first_visit}"), "Who wrote what"),
    ] {
        // Checked once outside the timing, so a broken page cannot be benchmarked as fast.
        let page = runtime.block_on(browser.get(&path));
        if !page.status.is_success() || !page.body.contains(expect) {
            return Err(format!("{path}: {} without {expect:?}", page.status).into());
        }
        group.bench_function(name, |b| b.iter(|| runtime.block_on(browser.get(&path))));
    }
    group.finish();
    Ok(())
}

/// A team with a lead, `PEOPLE` people and `VISITS` submitted visits (one in ten flagged for
/// safeguarding), written to the server as syncs would write them. Returns one visit's id.
fn seed(storage: &SqliteStorage) -> Result<DocId> {
    let team = TeamId::new("north")?;
    let worker = WorkerId::new("w1")?;
    let lead = WorkerId::new("lead")?;
    storage.create_team(&team, "North", ScopePolicy::Team)?;
    storage.add_worker(&worker, "Worker One", Role::Worker, &team)?;
    storage.add_worker(&lead, "Lead", Role::Lead, &team)?;
    storage.set_password(&lead, &hash_password(PASSWORD)?, 0)?;
    let author = Author::new(worker.clone(), DeviceId::new("phone")?);
    let mut people = Vec::new();
    let mut docs = Vec::new();
    for i in 0..PEOPLE {
        let mut person = Document::new_person(
            &author,
            &NewPerson {
                name: format!("Person {i}"),
                preferred_name: None,
                date_of_birth: None,
                nhs_number: None,
                address: None,
                team: team.clone(),
                allocated_workers: vec![worker.clone()],
                risk: [RiskTier::High, RiskTier::Medium, RiskTier::Low][i % 3],
            },
        )?;
        people.push(person.person_id()?);
        docs.push(write_of(&mut person, Some(&team))?);
    }
    let mut first = None;
    for i in 0..VISITS {
        let at = Utc
            .timestamp_opt(1_760_000_000 + i as i64 * 3_600, 0)
            .single()
            .ok_or("visit time")?;
        let (mut visit, mut review) = Document::new_visit(
            &author,
            &NewVisit {
                person: people[i % PEOPLE].clone(),
                worker: worker.clone(),
                at,
                setting: Setting::HomeVisit,
            },
        )?;
        visit.edit_visit(|v| {
            v.set_section(Section::WhatMatters, "Seeing her grandchildren on Sundays.")?;
            v.set_section(Section::Goals, "Walk to the shop again by spring.")?;
            if i % 10 == 0 {
                v.raise_safeguarding("Bruising she could not explain.")?;
            }
            Ok(())
        })?;
        let visit_write = write_of(&mut visit, None)?;
        review.review(ReviewAction::Submit, None, &visit_write.heads)?;
        first.get_or_insert_with(|| visit.id().clone());
        docs.push(visit_write);
        docs.push(write_of(&mut review, None)?);
    }
    for batch in docs.chunks(500) {
        storage.write(
            None,
            &SyncWrite {
                docs: batch.to_vec(),
                ..SyncWrite::default()
            },
        )?;
    }
    first.ok_or_else(|| "no visits".into())
}

fn write_of(doc: &mut Document, team: Option<&TeamId>) -> Result<DocWrite> {
    let saved = doc.save();
    let loaded = automerge::AutoCommit::load(&saved)?;
    let summary = summarise(&loaded, doc.id())?;
    Ok(DocWrite {
        doc: doc.id().clone(),
        person: summary.person,
        doc_type: summary.doc_type.code().to_string(),
        heads: Record::load(doc.id().clone(), &saved)?.heads(),
        index_rows: outpost_core::sync::index_rows(&loaded, doc.id())?,
        listing: Some(listing(&loaded, doc.id())?),
        changes: saved.clone(),
        snapshot: saved,
        person_scope: team.map(|team| PersonScope {
            team: team.clone(),
            allocated: summary.allocated,
        }),
    })
}
