//! The caseload and a person's pages: risk order and action counts, names that fall back to
//! ids, visits, actions and records newest first, safeguarding alerts, and listing apart from a sync.

use chrono::NaiveDate;
use outpost_core::sync::Listing;
use outpost_core::{DocId, ReviewState, RiskTier};
use outpost_server::storage::{
    ActionListing, CaseloadEntry, DocWrite, ListedPerson, QueueFilter, RecordListing, ScopePolicy,
};

use super::{action, at, day, north, person, queued, visit, write};
use crate::Backend;
use crate::documents::{NOW, add_team, doc_write, hash, id, person_write, team};

fn the_caseload_puts_higher_risk_first_and_counts_open_and_overdue_actions(s: &Backend) {
    north(s);
    add_team(s, "south", ScopePolicy::Team);
    let today = day(0);
    let actions = vec![
        action("overdue", Some(day(-1)), false, false),
        action("due-today", Some(today), false, false),
        action("undated", None, false, false),
        action("done", Some(day(-5)), true, false),
        action("cancelled", Some(day(-5)), false, true),
    ];
    write(
        s,
        vec![
            person("high", "Nia", None, RiskTier::High),
            visit("v1", "high", "ann", NOW - 100, false, vec![]),
            visit("v2", "high", "ann", NOW, false, actions),
            person("med", "bea", None, RiskTier::Medium),
            person("S1", "Sam", None, RiskTier::Low),
            person("s2", "Sam", None, RiskTier::Low),
            person("al", "Zed", Some("al"), RiskTier::Low),
            person_write("unlisted", "north", &[]),
            DocWrite {
                listing: Some(Listing::Person {
                    name: "Elsewhere".into(),
                    preferred_name: None,
                    risk: RiskTier::High,
                }),
                ..person_write("away", "south", &[])
            },
        ],
    );
    let entry = |person: &str, name: &str, risk: &str| CaseloadEntry {
        person: id(person),
        name: name.into(),
        risk: risk.into(),
        team: team("north"),
        last_visit_at: None,
        open_actions: 0,
        overdue_actions: 0,
    };
    let expected = vec![
        CaseloadEntry {
            last_visit_at: Some(NOW),
            open_actions: 3,
            overdue_actions: 1,
            ..entry("high", "Nia", "high")
        },
        entry("med", "bea", "medium"),
        entry("al", "al", "low"),
        entry("S1", "Sam", "low"),
        entry("s2", "Sam", "low"),
        entry("unlisted", "unlisted", "unknown"),
    ];
    assert_eq!(s.caseload(&[team("north")], today).unwrap(), expected);
    assert_eq!(s.caseload(&[team("north"), team("south")], today).unwrap().len(), 7);
    assert!(s.caseload(&[], today).unwrap().is_empty());
}

fn a_listed_person_falls_back_to_their_id_and_unknown_risk(s: &Backend) {
    north(s);
    write(
        s,
        vec![
            person("p1", "Iris Kemp", None, RiskTier::Medium),
            person_write("p2", "north", &[]),
        ],
    );
    let listed = |person: &str, name: &str, risk: &str| ListedPerson {
        person: id(person),
        team: team("north"),
        name: name.into(),
        risk: risk.into(),
    };
    assert_eq!(
        s.listed_person(&id("p1")).unwrap(),
        Some(listed("p1", "Iris Kemp", "medium"))
    );
    assert_eq!(s.listed_person(&id("p2")).unwrap(), Some(listed("p2", "p2", "unknown")));
    assert_eq!(s.listed_person(&id("ghost")).unwrap(), None);
}

fn a_persons_visits_actions_and_records_read_newest_first(s: &Backend) {
    north(s);
    write(s, vec![person("p1", "Iris Kemp", None, RiskTier::Low)]);
    // The person's documents in one write, as a day's work arrives (PostgreSQL writes them a
    // statement per table).
    write(
        s,
        vec![
            visit(
                "v1",
                "p1",
                "ann",
                NOW,
                false,
                vec![action("x", Some(day(2)), false, false), action("y", None, false, false)],
            ),
            visit(
                "v2",
                "p1",
                "ann",
                NOW + 100,
                false,
                vec![
                    action("z", Some(day(1)), true, false),
                    // Given twice: the later one stands.
                    action("w", Some(day(9)), true, false),
                    action("w", Some(day(2)), false, true),
                ],
            ),
            DocWrite {
                listing: Some(Listing::Assessment {
                    at: at(NOW),
                    template_id: "tpl-1".into(),
                }),
                ..doc_write("a1", "p1", "assessment")
            },
            DocWrite {
                listing: Some(Listing::Observations {
                    at: at(NOW + 50),
                    news2: None,
                    needs_confirmation: false,
                }),
                ..doc_write("o2", "p1", "observations")
            },
            DocWrite {
                listing: Some(Listing::Observations {
                    at: at(NOW + 50),
                    news2: Some(3),
                    needs_confirmation: true,
                }),
                ..doc_write("o1", "p1", "observations")
            },
        ],
    );
    let visits: Vec<(String, String)> = s
        .person_visits(&id("p1"))
        .unwrap()
        .into_iter()
        .map(|v| (v.visit.to_string(), v.state))
        .collect();
    assert_eq!(visits, [("v2".into(), "draft".into()), ("v1".into(), "draft".into())]);

    let listed = |visit: &str, what: &str, due: Option<NaiveDate>, done: bool, cancelled: bool| ActionListing {
        visit: id(visit),
        what: format!("do {what}"),
        due,
        done,
        cancelled,
    };
    // By due date, undated last; on the same date the newer visit's first.
    assert_eq!(
        s.person_actions(&id("p1")).unwrap(),
        [
            listed("v2", "z", Some(day(1)), true, false),
            listed("v2", "w", Some(day(2)), false, true),
            listed("v1", "x", Some(day(2)), false, false),
            listed("v1", "y", None, false, false),
        ]
    );
    // Listing a visit again replaces its actions.
    write(
        s,
        vec![visit(
            "v2",
            "p1",
            "ann",
            NOW + 100,
            false,
            vec![action("w", None, true, false)],
        )],
    );
    assert_eq!(
        s.person_actions(&id("p1")).unwrap(),
        [
            listed("v1", "x", Some(day(2)), false, false),
            listed("v2", "w", None, true, false),
            listed("v1", "y", None, false, false),
        ]
    );

    let record = |doc: &str, doc_type: &str, when: i64, summary: &str| RecordListing {
        doc: id(doc),
        doc_type: doc_type.into(),
        at: when,
        summary: summary.into(),
    };
    assert_eq!(
        s.person_records(&id("p1")).unwrap(),
        [
            record(
                "o1",
                "observations",
                NOW + 50,
                "Observations: NEWS2 3; values to confirm"
            ),
            record(
                "o2",
                "observations",
                NOW + 50,
                "Observations: NEWS2 not scored (incomplete or contested)"
            ),
            record("a1", "assessment", NOW, "Assessment (tpl-1)"),
        ]
    );
    assert!(s.person_records(&id("ghost")).unwrap().is_empty());
}

fn a_safeguarding_alert_goes_out_once_until_the_concern_is_cleared(s: &Backend) {
    north(s);
    let concern = |raised| visit("v1", "p1", "ann", NOW, raised, vec![]);
    write(s, vec![person("p1", "Iris Kemp", None, RiskTier::Low), concern(true)]);
    assert!(s.mark_alerted(&id("v1"), NOW).unwrap());
    assert!(!s.reopen().mark_alerted(&id("v1"), NOW + 1).unwrap());
    write(s, vec![concern(true)]);
    assert!(!s.mark_alerted(&id("v1"), NOW + 2).unwrap(), "still the same concern");
    write(s, vec![concern(false)]);
    write(s, vec![concern(true)]);
    assert!(s.mark_alerted(&id("v1"), NOW + 3).unwrap(), "raised again");
}

fn a_document_listed_apart_from_a_sync_joins_the_queue(s: &Backend) {
    north(s);
    write(
        s,
        vec![person_write("p1", "north", &[]), doc_write("v1", "p1", "visit")],
    );
    assert!(queued(s, &QueueFilter::default()).is_empty());
    let listing = Listing::Visit {
        worker: "ann".into(),
        at: at(NOW),
        safeguarding: false,
        actions: vec![action("x", None, false, false)],
    };
    s.list(&id("v1"), &id("p1"), &[hash(1)], &listing).unwrap();
    let submitted = Listing::Review {
        visit: id("v1"),
        state: ReviewState::Submitted,
        submitted_at: Some(at(NOW + 1)),
        approved_heads: None,
    };
    s.list(&DocId::review_of(&id("v1")), &id("p1"), &[hash(2)], &submitted)
        .unwrap();
    assert_eq!(queued(s, &QueueFilter::default()), ["v1"]);
    assert_eq!(s.person_actions(&id("p1")).unwrap().len(), 1);

    let all: Vec<String> = s.all_docs().unwrap().into_iter().map(|d| d.to_string()).collect();
    assert_eq!(all, ["p1", "v1"]);
    s.relist_done().unwrap();
    assert!(!s.needs_relist().unwrap());
    assert!(!s.reopen().needs_relist().unwrap());
}

on_every_backend!(
    the_caseload_puts_higher_risk_first_and_counts_open_and_overdue_actions,
    a_listed_person_falls_back_to_their_id_and_unknown_risk,
    a_persons_visits_actions_and_records_read_newest_first,
    a_safeguarding_alert_goes_out_once_until_the_concern_is_cleared,
    a_document_listed_apart_from_a_sync_joins_the_queue,
);
