//! `ReviewIndex` on every backend: the listing each write keeps beside the documents, and the
//! queue over it (states, filters, order, paging); the caseload and person pages are in `pages`.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

#[path = "review/pages.rs"]
mod pages;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use outpost_core::sync::{ActionListing as Action, Listing};
use outpost_core::{ChangeHash, DocId, ReviewState, RiskTier, WorkerId};
use outpost_server::storage::{DocWrite, QueueFilter, QueueState, Role, ScopePolicy, VisitListing};

use crate::Backend;
use crate::documents::{NOW, add_team, add_worker, doc_write, docs, hash, id, person_write, team};

const DAY: i64 = 86_400;

/// The day `offset` days from NOW's, in UTC.
fn day(offset: i64) -> NaiveDate {
    DateTime::from_timestamp(NOW - NOW % DAY + offset * DAY, 0)
        .unwrap()
        .date_naive()
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

fn person(person: &str, name: &str, preferred: Option<&str>, risk: RiskTier) -> DocWrite {
    DocWrite {
        listing: Some(Listing::Person {
            name: name.into(),
            preferred_name: preferred.map(Into::into),
            risk,
        }),
        ..person_write(person, "north", &[])
    }
}

fn visit(visit: &str, person: &str, worker: &str, when: i64, safeguarding: bool, actions: Vec<Action>) -> DocWrite {
    DocWrite {
        listing: Some(Listing::Visit {
            worker: worker.into(),
            at: at(when),
            safeguarding,
            actions,
        }),
        ..doc_write(visit, person, "visit")
    }
}

fn review(
    visit: &str,
    person: &str,
    state: ReviewState,
    submitted: Option<i64>,
    approved: Option<&[ChangeHash]>,
) -> DocWrite {
    DocWrite {
        listing: Some(Listing::Review {
            visit: id(visit),
            state,
            submitted_at: submitted.map(at),
            approved_heads: approved.map(<[ChangeHash]>::to_vec),
        }),
        ..doc_write(DocId::review_of(&id(visit)).as_str(), person, "review")
    }
}

fn submitted(visit: &str, person: &str, when: i64) -> DocWrite {
    review(visit, person, ReviewState::Submitted, Some(when), None)
}

fn action(id: &str, due: Option<NaiveDate>, done: bool, cancelled: bool) -> Action {
    Action {
        id: id.into(),
        what: format!("do {id}"),
        due,
        done,
        cancelled,
    }
}

fn write(s: &Backend, writes: Vec<DocWrite>) {
    s.write(None, &docs(writes)).unwrap();
}

fn queued(s: &Backend, filter: &QueueFilter) -> Vec<String> {
    let page = s.queue(&[team("north")], filter, 0, 100).unwrap();
    assert_eq!(page.total, page.rows.len());
    page.rows.into_iter().map(|row| row.visit.to_string()).collect()
}

fn north(s: &Backend) {
    add_team(s, "north", ScopePolicy::Team);
}

fn the_queue_lists_submitted_visits_with_their_people_and_workers(s: &Backend) {
    north(s);
    add_team(s, "south", ScopePolicy::Team);
    add_worker(s, "ann", "Ann Lee", Role::Worker, "north");
    write(
        s,
        vec![
            person("p1", "Iris Kemp", Some("Iris K"), RiskTier::High),
            visit("v1", "p1", "ann", NOW, false, vec![]),
            submitted("v1", "p1", NOW + 60),
            // Unlisted person, unknown worker: their ids stand in for their names.
            person_write("p2", "north", &[]),
            visit("v2", "p2", "zed", NOW, true, vec![]),
            submitted("v2", "p2", NOW + 30),
        ],
    );
    let first = VisitListing {
        visit: id("v1"),
        person: id("p1"),
        person_name: "Iris K".into(),
        worker: "ann".into(),
        worker_name: "Ann Lee".into(),
        visit_at: NOW,
        submitted_at: Some(NOW + 60),
        state: "submitted".into(),
        changed_since_approval: false,
        safeguarding: false,
    };
    let second = VisitListing {
        visit: id("v2"),
        person: id("p2"),
        person_name: "p2".into(),
        worker: "zed".into(),
        worker_name: "zed".into(),
        submitted_at: Some(NOW + 30),
        safeguarding: true,
        ..first.clone()
    };
    let page = s.queue(&[team("north")], &QueueFilter::default(), 0, 10).unwrap();
    assert_eq!(page.rows, [first.clone(), second]);
    assert_eq!(page.total, 2);
    assert_eq!(s.visit_listing(&id("v1")).unwrap(), Some(first));
    assert_eq!(s.visit_listing(&id("ghost")).unwrap(), None);

    for teams in [vec![], vec![team("south")]] {
        let page = s.queue(&teams, &QueueFilter::default(), 0, 10).unwrap();
        assert_eq!((page.rows.len(), page.total), (0, 0), "{teams:?}");
    }
}

fn each_queue_state_picks_its_visits(s: &Backend) {
    north(s);
    let approved = [hash(1)];
    let changed = [hash(9)];
    write(
        s,
        vec![
            person("p1", "Iris Kemp", None, RiskTier::Low),
            visit("draft", "p1", "ann", NOW, false, vec![]),
            visit("sub", "p1", "ann", NOW, false, vec![]),
            submitted("sub", "p1", NOW + 1),
            visit("same", "p1", "ann", NOW, false, vec![]),
            review("same", "p1", ReviewState::Approved, Some(NOW + 2), Some(&approved)),
            visit("changed", "p1", "ann", NOW, false, vec![]),
            review("changed", "p1", ReviewState::Approved, Some(NOW + 3), Some(&changed)),
            // Approved with no heads recorded: nothing proves it unchanged.
            visit("unknown", "p1", "ann", NOW, false, vec![]),
            review("unknown", "p1", ReviewState::Approved, Some(NOW + 4), None),
            visit("ret", "p1", "ann", NOW, false, vec![]),
            review("ret", "p1", ReviewState::Returned, Some(NOW + 5), None),
        ],
    );
    let expected: [(QueueState, &[&str]); 6] = [
        (QueueState::Waiting, &["unknown", "changed", "sub"]),
        (QueueState::Submitted, &["sub"]),
        (QueueState::ChangedSinceApproval, &["unknown", "changed"]),
        (QueueState::Approved, &["unknown", "changed", "same"]),
        (QueueState::Returned, &["ret"]),
        (QueueState::Any, &["ret", "unknown", "changed", "same", "sub"]),
    ];
    for (state, visits) in expected {
        let filter = QueueFilter {
            state,
            ..QueueFilter::default()
        };
        assert_eq!(queued(s, &filter), visits, "{state:?}");
    }
    let flags: Vec<(String, String, bool)> = s
        .person_visits(&id("p1"))
        .unwrap()
        .into_iter()
        .map(|v| (v.visit.to_string(), v.state, v.changed_since_approval))
        .collect();
    let flag = |visit: &str| flags.iter().find(|(v, ..)| v == visit).unwrap().clone();
    assert_eq!(flag("draft"), ("draft".into(), "draft".into(), false));
    assert!(!flag("same").2);
    assert!(flag("changed").2);
    assert!(flag("unknown").2);
    assert_eq!(flag("ret"), ("ret".into(), "returned".into(), false));
}

fn the_queue_filters_by_worker_person_day_and_safeguarding(s: &Backend) {
    north(s);
    let start = NOW - NOW % DAY;
    write(
        s,
        vec![
            person("p1", "Iris Kemp", None, RiskTier::Low),
            person("p2", "Robert Ames", Some("Bob"), RiskTier::Low),
            visit("v1", "p1", "ann", start, true, vec![]),
            submitted("v1", "p1", NOW + 3),
            visit("v2", "p2", "bea", start + DAY - 1, false, vec![]),
            submitted("v2", "p2", NOW + 2),
            visit("v3", "p2", "ann", start + DAY, false, vec![]),
            submitted("v3", "p2", NOW + 1),
        ],
    );
    let ann = Some(WorkerId::new("ann").unwrap());
    let cases: [(QueueFilter, &[&str]); 9] = [
        (
            QueueFilter {
                worker: ann.clone(),
                ..QueueFilter::default()
            },
            &["v1", "v3"],
        ),
        (
            QueueFilter {
                person: Some("KEMP".into()),
                ..QueueFilter::default()
            },
            &["v1"],
        ),
        (
            QueueFilter {
                person: Some(" bob ".into()),
                ..QueueFilter::default()
            },
            &["v2", "v3"],
        ),
        (
            QueueFilter {
                person: Some("  ".into()),
                ..QueueFilter::default()
            },
            &["v1", "v2", "v3"],
        ),
        (
            QueueFilter {
                from: Some(day(1)),
                ..QueueFilter::default()
            },
            &["v3"],
        ),
        (
            QueueFilter {
                to: Some(day(0)),
                ..QueueFilter::default()
            },
            &["v1", "v2"],
        ),
        (
            QueueFilter {
                from: Some(day(0)),
                to: Some(day(0)),
                ..QueueFilter::default()
            },
            &["v1", "v2"],
        ),
        (
            QueueFilter {
                safeguarding_only: true,
                ..QueueFilter::default()
            },
            &["v1"],
        ),
        (
            QueueFilter {
                worker: ann,
                person: Some("ames".into()),
                ..QueueFilter::default()
            },
            &["v3"],
        ),
    ];
    for (filter, visits) in cases {
        assert_eq!(queued(s, &filter), visits, "{filter:?}");
    }
}

fn the_queue_pages_newest_first_and_counts_every_match(s: &Backend) {
    north(s);
    write(
        s,
        vec![
            person("p1", "Iris Kemp", None, RiskTier::Low),
            visit("a-visit", "p1", "ann", NOW, false, vec![]),
            submitted("a-visit", "p1", NOW + 10),
            visit("B-visit", "p1", "ann", NOW, false, vec![]),
            submitted("B-visit", "p1", NOW + 10),
            visit("late", "p1", "ann", NOW, false, vec![]),
            submitted("late", "p1", NOW + 20),
            // Submitted with no time: its visit's time orders it.
            visit("untimed", "p1", "ann", NOW + 30, false, vec![]),
            review("untimed", "p1", ReviewState::Submitted, None, None),
        ],
    );
    let page = |offset| {
        let page = s.queue(&[team("north")], &QueueFilter::default(), offset, 3).unwrap();
        let visits: Vec<String> = page.rows.iter().map(|row| row.visit.to_string()).collect();
        (visits, page.total)
    };
    // Ties by id, in byte order.
    assert_eq!(page(0), (vec!["untimed".into(), "late".into(), "B-visit".into()], 4));
    assert_eq!(page(3), (vec!["a-visit".into()], 4));
    assert_eq!(page(9), (vec![], 4));
}

fn team_workers_are_listed_by_name(s: &Backend) {
    north(s);
    add_team(s, "south", ScopePolicy::Team);
    add_worker(s, "w1", "ann", Role::Lead, "north");
    add_worker(s, "w2", "Zoe", Role::Worker, "north");
    add_worker(s, "w3", "Mo", Role::Worker, "south");
    let listed = |teams: &[&str]| -> Vec<(String, String, Role)> {
        let teams: Vec<_> = teams.iter().map(|t| team(t)).collect();
        s.team_workers(&teams)
            .unwrap()
            .into_iter()
            .map(|(worker, name, role)| (worker.to_string(), name, role))
            .collect()
    };
    let (ann, zoe, mo) = (
        ("w1".to_string(), "ann".to_string(), Role::Lead),
        ("w2".to_string(), "Zoe".to_string(), Role::Worker),
        ("w3".to_string(), "Mo".to_string(), Role::Worker),
    );
    assert_eq!(listed(&["north"]), [zoe.clone(), ann.clone()], "byte order");
    assert_eq!(listed(&["north", "south"]), [mo, zoe, ann]);
    assert!(listed(&[]).is_empty());
}

fn a_write_lists_its_documents_in_the_same_transaction(s: &Backend) {
    north(s);
    write(s, vec![person("p1", "Iris Kemp", None, RiskTier::Low)]);
    // The second document names a person the server does not know: the write fails whole.
    let failing = vec![
        visit("v1", "p1", "ann", NOW, true, vec![action("x", None, false, false)]),
        submitted("v1", "p1", NOW),
        doc_write("v9", "ghost", "visit"),
    ];
    assert!(s.write(None, &docs(failing)).is_err());
    assert_eq!(s.visit_listing(&id("v1")).unwrap(), None);
    assert!(s.person_actions(&id("p1")).unwrap().is_empty());
    let filter = QueueFilter {
        state: QueueState::Any,
        ..QueueFilter::default()
    };
    assert!(queued(s, &filter).is_empty());
}

on_every_backend!(
    the_queue_lists_submitted_visits_with_their_people_and_workers,
    each_queue_state_picks_its_visits,
    the_queue_filters_by_worker_person_day_and_safeguarding,
    the_queue_pages_newest_first_and_counts_every_match,
    team_workers_are_listed_by_name,
    a_write_lists_its_documents_in_the_same_transaction,
);
