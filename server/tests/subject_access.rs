//! Subject access export, on every backend: two people of one team, each with a record,
//! a visit (submitted by the worker's device, returned by the lead with a comment), an
//! assessment and observations, each synced and viewed. One person's export, as the lead's page
//! (HTML), as its JSON download and from the admin CLI (both forms), holds every item of theirs
//! and not one string of the other's: no name, note, comment or record id. A lead of another
//! team gets exactly the answer a missing person gets, and every export is audited.
// The helpers below are test code too; a failed step should panic where it failed.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use automerge::AutoCommit;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::{NaiveDate, TimeZone, Utc};
use http_body_util::BodyExt;
use outpost_core::{
    Author, DeviceId, DocId, Document, NewAction, NewAssessment, NewConsent, NewContact, NewObservations, NewPerson,
    NewVisit, Outcome, PersonId, ReviewAction, RiskTier, Section, Setting, TeamId, WorkerId,
};
use outpost_server::admin::{self, Command};
use outpost_server::auth::hash_secret;
use outpost_server::database::Database;
use outpost_server::storage::postgres::PostgresStorage;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{AuditEntry, AuditFilter, DocWrite, PersonScope, Role, ScopePolicy, Storage, SyncWrite};
use outpost_server::web::session::SESSION_COOKIE;
use outpost_server::{AppState, app};
use tower::ServiceExt;

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $test() {
                super::$test(&super::Backend::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::$test(&super::Backend::postgres());
            })*
        }
    };
}

on_every_backend!(an_export_holds_everything_about_the_person_and_nothing_about_anyone_else);

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[test]
fn the_admin_command_parses_and_refuses_a_bad_person_id() {
    use clap::Parser;
    let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("outpost-server").chain(args.iter().copied()));
    assert_eq!(
        parse(&["subject-access", "p-1", "--json", "--out", "p-1.json"])
            .unwrap()
            .command,
        Command::SubjectAccess {
            person: DocId::new("p-1").unwrap(),
            json: true,
            out: Some(PathBuf::from("p-1.json")),
        }
    );
    assert_eq!(
        parse(&["subject-access", "p-1"]).unwrap().command,
        Command::SubjectAccess {
            person: DocId::new("p-1").unwrap(),
            json: false,
            out: None,
        }
    );
    let err = parse(&["subject-access", "p/1"]).unwrap_err();
    assert!(err.to_string().contains("document id"), "{err}");
}

/// A fresh storage of one kind, removed when dropped (outside any async runtime: the PostgreSQL
/// storage owns one).
struct Backend {
    storage: Arc<dyn Storage>,
    dir: tempfile::TempDir,
    schema: Option<String>,
}

impl Backend {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path().join("server.db")).unwrap();
        Self {
            storage: Arc::new(storage),
            dir,
            schema: None,
        }
    }

    fn postgres() -> Self {
        let schema = format!("outpost_test_{}", uuid::Uuid::new_v4().simple());
        let storage = PostgresStorage::open_in_schema(&postgres_url(), &schema).unwrap_or_else(|e| {
            panic!("PostgreSQL is needed for this test (set OUTPOST_TEST_POSTGRES to reach it): {e}")
        });
        Self {
            storage: Arc::new(storage),
            dir: tempfile::tempdir().unwrap(),
            schema: Some(schema),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else { return };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let Ok((client, connection)) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await else {
                return;
            };
            tokio::spawn(connection);
            // Best effort: a schema left behind holds only test data.
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        });
    }
}

fn postgres_url() -> String {
    std::env::var("OUTPOST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn worker(id: &str) -> WorkerId {
    WorkerId::new(id).unwrap()
}

fn team(id: &str) -> TeamId {
    TeamId::new(id).unwrap()
}

/// Stores a document as a sync from `by`'s phone would: its snapshot, index rows and listing,
/// with a `push` audit entry.
fn store(storage: &dyn Storage, doc: &mut Document, by: &str) {
    let bytes = doc.save();
    let mut loaded = AutoCommit::load(&bytes).unwrap();
    let id = doc.id().clone();
    let summary = outpost_core::sync::summarise(&loaded, &id).unwrap();
    let write = SyncWrite {
        docs: vec![DocWrite {
            doc: id.clone(),
            person: summary.person.clone(),
            doc_type: summary.doc_type.code().into(),
            heads: loaded.get_heads(),
            snapshot: bytes.clone(),
            index_rows: outpost_core::sync::index_rows(&loaded, &id).unwrap(),
            changes: bytes,
            person_scope: summary.team.map(|team| PersonScope {
                team,
                allocated: summary.allocated,
            }),
            listing: outpost_core::sync::listing(&loaded, &id).ok(),
        }],
        audit: vec![AuditEntry {
            at: Utc::now().timestamp(),
            who: format!("{by}/{by}-phone"),
            action: "push".into(),
            subject: id.to_string(),
            detail: String::new(),
            from: String::new(),
        }],
        expected: vec![(id, Vec::new())],
        ..SyncWrite::default()
    };
    storage.write(None, &write).unwrap();
}

/// What one person's records hold: every string a test looks for, by kind.
struct Held {
    person: PersonId,
    visit: DocId,
    assessment: DocId,
    observations: DocId,
    /// Text written into their records, each unique to this person.
    texts: Vec<String>,
}

impl Held {
    /// Every string that identifies this person or their records.
    fn probes(&self) -> Vec<String> {
        let mut all = self.texts.clone();
        all.extend(
            [&self.person, &self.visit, &self.assessment, &self.observations]
                .iter()
                .map(|id| id.to_string()),
        );
        all.push(DocId::review_of(&self.visit).to_string());
        all
    }
}

/// A person of team north with a visit (submitted from the device, then returned by the lead
/// with a comment through the server), an assessment and observations, all tagged `tag`.
fn person_with_records(state: &AppState, tag: &str) -> Held {
    let storage = state.storage.as_ref();
    let wes = Author::new(worker("wes"), DeviceId::new("wes-phone").unwrap());
    let nia = Author::new(worker("nia"), DeviceId::new("nia-phone").unwrap());
    let texts: Vec<String> = [
        "Name",
        "Street",
        "Contact",
        "Consent",
        "Matters",
        "Strengths",
        "Action",
        "Feedback",
        "Needs",
        "Wound",
        "Comment",
    ]
    .iter()
    .map(|what| format!("{tag}{what}Probe"))
    .collect();
    let text = |what: &str| texts.iter().find(|t| t.contains(what)).unwrap().clone();

    let mut person = Document::new_person(
        &wes,
        &NewPerson {
            name: text("Name"),
            preferred_name: None,
            date_of_birth: NaiveDate::from_ymd_opt(1941, 3, 9),
            nhs_number: None,
            address: Some(text("Street")),
            team: team("north"),
            allocated_workers: vec![worker("wes")],
            risk: RiskTier::Medium,
        },
    )
    .unwrap();
    person
        .edit_person(|p| {
            p.add_contact(&NewContact {
                name: text("Contact"),
                relationship: "daughter".into(),
                phone: None,
            })?;
            p.record_consent(&NewConsent {
                with_whom: text("Consent"),
                given_on: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(),
            })?;
            Ok(())
        })
        .unwrap();
    store(storage, &mut person, "wes");
    let person_id = person.id().clone();

    let (mut visit, mut review) = Document::new_visit(
        &wes,
        &NewVisit {
            person: person_id.clone(),
            worker: worker("wes"),
            at: Utc.with_ymd_and_hms(2025, 6, 1, 10, 0, 0).unwrap(),
            setting: Setting::HomeVisit,
        },
    )
    .unwrap();
    visit
        .edit_visit(|v| {
            v.set_section(Section::WhatMatters, &text("Matters"))?;
            v.set_section(Section::Strengths, &text("Strengths"))?;
            v.add_action(&NewAction {
                what: text("Action"),
                who: "Wes".into(),
                due: None,
            })?;
            v.set_feedback(Some(outpost_core::Helped::Yes), &text("Feedback"))
        })
        .unwrap();
    let visit_heads = AutoCommit::load(&visit.save()).unwrap().get_heads();
    review.review(ReviewAction::Submit, None, &visit_heads).unwrap();
    store(storage, &mut visit, "wes");
    store(storage, &mut review, "wes");
    outpost_server::review::decide(
        &state.sync,
        &worker("lena"),
        visit.id(),
        ReviewAction::Return,
        Some(&text("Comment")),
        None,
        "198.51.100.4",
    )
    .unwrap();

    let mut assessment = Document::new_assessment(
        &wes,
        &NewAssessment {
            person: person_id.clone(),
            assessor: worker("wes"),
            at: Utc.with_ymd_and_hms(2025, 6, 1, 11, 0, 0).unwrap(),
            template_id: "care-act-2014-outcomes".into(),
            template_version: 1,
            sections: vec!["daily_living".into()],
        },
    )
    .unwrap();
    assessment
        .edit_assessment(|a| a.answer("nutrition", Outcome::AchievesWithDifficulty, Some(&text("Needs"))))
        .unwrap();
    store(storage, &mut assessment, "wes");

    let mut observations = Document::new_observations(
        &nia,
        &NewObservations {
            person: person_id.clone(),
            nurse: worker("nia"),
            taken_at: Utc.with_ymd_and_hms(2025, 6, 2, 9, 0, 0).unwrap(),
        },
    )
    .unwrap();
    observations
        .edit_observations(|o| {
            o.set_pulse(72)?;
            o.set_wound_notes(&text("Wound"))
        })
        .unwrap();
    store(storage, &mut observations, "nia");

    Held {
        person: person_id,
        visit: visit.id().clone(),
        assessment: assessment.id().clone(),
        observations: observations.id().clone(),
        texts,
    }
}

/// A page as a signed-in lead gets it.
struct Page {
    status: StatusCode,
    content_type: String,
    body: String,
}

async fn get(state: &AppState, token: &str, path: &str) -> Page {
    let mut request = Request::get(path)
        .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000))));
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn sign_in(storage: &dyn Storage, lead: &str) -> String {
    let token = format!("token-of-{lead}");
    storage
        .create_session(&hash_secret(&token), &worker(lead), "csrf", Utc::now().timestamp())
        .unwrap();
    token
}

fn assert_holds_only(what: &str, text: &str, mine: &Held, theirs: &Held) {
    for probe in mine.probes() {
        assert!(text.contains(&probe), "the {what} lacks {probe:?}");
    }
    for probe in theirs.probes() {
        assert!(!text.contains(&probe), "the {what} holds the other person's {probe:?}");
    }
}

fn exports(storage: &dyn Storage, person: &PersonId) -> Vec<(String, String)> {
    let filter = AuditFilter {
        record: Some(person.to_string()),
        ..AuditFilter::default()
    };
    storage
        .audit_entries(&filter, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.action == "subject-access-export")
        .map(|e| (e.entry.who, e.entry.detail))
        .collect()
}

fn an_export_holds_everything_about_the_person_and_nothing_about_anyone_else(backend: &Backend) {
    let storage = backend.storage.clone();
    for id in ["north", "south"] {
        storage.create_team(&team(id), id, ScopePolicy::Team).unwrap();
    }
    for (id, name, role, of) in [
        ("wes", "Wes Worker", Role::Worker, "north"),
        ("nia", "Nia Nurse", Role::Worker, "north"),
        ("lena", "Lena Lead", Role::Lead, "north"),
        ("lars", "Lars Lead", Role::Lead, "south"),
    ] {
        storage.add_worker(&worker(id), name, role, &team(of)).unwrap();
    }
    let state = AppState::new(storage.clone()).unwrap();
    let alpha = person_with_records(&state, "Alpha");
    let bravo = person_with_records(&state, "Bravo");
    let lena = sign_in(storage.as_ref(), "lena");
    let lars = sign_in(storage.as_ref(), "lars");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Both people viewed by the lead, so each has access of their own in the audit trail.
        for held in [&alpha, &bravo] {
            let page = get(&state, &lena, &format!("/review/people/{}", held.person)).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body
                    .contains(&format!("/review/people/{}/subject-access", held.person)),
                "the person's page links to their export"
            );
        }

        let html = get(
            &state,
            &lena,
            &format!("/review/people/{}/subject-access", alpha.person),
        )
        .await;
        assert_eq!(html.status, StatusCode::OK, "{}", html.body);
        assert_holds_only("page", &html.body, &alpha, &bravo);
        for expected in [
            "Returned",
            "Submitted",
            "view-person",
            "push",
            "review-return",
            "Wes Worker",
        ] {
            assert!(html.body.contains(expected), "the page lacks {expected:?}");
        }

        let json = get(
            &state,
            &lena,
            &format!("/review/people/{}/subject-access.json", alpha.person),
        )
        .await;
        assert_eq!(json.status, StatusCode::OK, "{}", json.body);
        assert_eq!(json.content_type, "application/json");
        assert_holds_only("JSON download", &json.body, &alpha, &bravo);
        let value: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(value["visits"].as_array().unwrap().len(), 1);
        assert_eq!(value["assessments"].as_array().unwrap().len(), 1);
        assert_eq!(value["observations"].as_array().unwrap().len(), 1);
        let steps: Vec<&str> = value["visits"][0]["review"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["action"].as_str().unwrap())
            .collect();
        assert_eq!(steps, ["submit", "return"]);
        let actions: Vec<&str> = value["access"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        for expected in ["push", "review-return", "view-person", "subject-access-export"] {
            assert!(actions.contains(&expected), "access lacks {expected}: {actions:?}");
        }

        // Another team's lead: the person is answered exactly as one that does not exist.
        for suffix in ["subject-access", "subject-access.json"] {
            let theirs = get(&state, &lars, &format!("/review/people/{}/{suffix}", alpha.person)).await;
            let missing = get(&state, &lars, &format!("/review/people/no-such-person/{suffix}")).await;
            assert_eq!(theirs.status, StatusCode::NOT_FOUND);
            assert_eq!(
                (theirs.status, &theirs.content_type, &theirs.body),
                (missing.status, &missing.content_type, &missing.body)
            );
            assert!(!theirs.body.contains("AlphaName"));
        }
    });
    drop(runtime);

    // The admin CLI, both forms, printed and written to a file that must be new.
    let database = Database::Sqlite(backend.dir.path().join("unused.db"));
    let run = |json: bool, out: Option<PathBuf>| {
        admin::run(
            Command::SubjectAccess {
                person: alpha.person.clone(),
                json,
                out,
            },
            storage.as_ref(),
            &database,
        )
    };
    let printed = run(false, None).unwrap();
    assert!(printed.contains("@media print"), "the file carries its stylesheet");
    assert_holds_only("CLI's HTML", &printed, &alpha, &bravo);
    let file = backend.dir.path().join("alpha.json");
    let said = run(true, Some(file.clone())).unwrap();
    assert!(said.contains(&file.display().to_string()), "{said}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_holds_only("CLI's JSON", &written, &alpha, &bravo);
    let again = run(true, Some(file.clone())).unwrap_err();
    assert!(again.to_string().contains("alpha.json"), "{again}");
    let missing = admin::run(
        Command::SubjectAccess {
            person: DocId::new("no-such-person").unwrap(),
            json: true,
            out: None,
        },
        storage.as_ref(),
        &database,
    )
    .unwrap_err();
    assert!(missing.to_string().contains("no-such-person"), "{missing}");

    // Every export audited, by whom and in which form; the refused ones not at all.
    let audited = exports(storage.as_ref(), &alpha.person);
    let detail = format!("json to {}", file.display());
    assert_eq!(
        audited
            .iter()
            .map(|(who, detail)| (who.as_str(), detail.as_str()))
            .collect::<Vec<_>>(),
        [
            ("lena/web", "html"),
            ("lena/web", "json"),
            ("admin", "html, printed"),
            ("admin", detail.as_str()),
        ]
    );
    assert!(exports(storage.as_ref(), &bravo.person).is_empty());

    // The other way round, so the probes are shown to be found where they are held.
    let theirs = admin::run(
        Command::SubjectAccess {
            person: bravo.person.clone(),
            json: true,
            out: None,
        },
        storage.as_ref(),
        &database,
    )
    .unwrap();
    assert_holds_only("other person's export", &theirs, &bravo, &alpha);
}
