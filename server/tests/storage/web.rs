//! Sign-in for the review pages on every backend: passwords, browser sessions, the teams a lead
//! reviews and the addresses their alerts go to.

// These run under #[test] wrappers that clippy's allow-unwrap-in-tests does not see through.
#![allow(clippy::unwrap_used)]

use outpost_core::{TeamId, WorkerId};
use outpost_server::Error;
use outpost_server::storage::{Role, ScopePolicy, WebSession};

use crate::Backend;

const NOW: i64 = 1_700_000_000;

fn team(id: &str) -> TeamId {
    TeamId::new(id).unwrap()
}

fn worker(id: &str) -> WorkerId {
    WorkerId::new(id).unwrap()
}

/// Teams `north`, `south` and `west`; `lena` leads north, `lars` leads south, `wes` works in
/// north.
fn teams_and_leads(s: &Backend) {
    for id in ["north", "south", "west"] {
        s.create_team(&team(id), id, ScopePolicy::Team).unwrap();
    }
    s.add_worker(&worker("lena"), "Lena", Role::Lead, &team("north"))
        .unwrap();
    s.add_worker(&worker("lars"), "Lars", Role::Lead, &team("south"))
        .unwrap();
    s.add_worker(&worker("wes"), "Wes", Role::Worker, &team("north"))
        .unwrap();
}

fn a_session_is_found_by_its_token_until_it_ends(s: &Backend) {
    teams_and_leads(s);
    assert_eq!(s.session(b"token-1").unwrap(), None);
    s.create_session(b"token-1", &worker("lena"), "csrf-1", NOW).unwrap();
    s.create_session(b"token-2", &worker("wes"), "csrf-2", NOW + 1).unwrap();

    let lena = WebSession {
        worker: worker("lena"),
        name: "Lena".into(),
        role: Role::Lead,
        csrf: "csrf-1".into(),
        created_at: NOW,
        seen_at: NOW,
    };
    assert_eq!(s.session(b"token-1").unwrap(), Some(lena.clone()));
    assert_eq!(
        s.session(b"token-2").unwrap().map(|w| (w.name, w.role)),
        Some(("Wes".into(), Role::Worker))
    );

    s.touch_session(b"token-1", NOW + 90).unwrap();
    assert_eq!(
        s.session(b"token-1").unwrap(),
        Some(WebSession {
            seen_at: NOW + 90,
            ..lena
        }),
        "touching keeps when it began"
    );
    // Unknown tokens are no error: a stale cookie is simply not a session.
    s.touch_session(b"token-9", NOW).unwrap();
    s.end_session(b"token-9").unwrap();

    s.end_session(b"token-1").unwrap();
    assert_eq!(s.session(b"token-1").unwrap(), None);
    assert!(s.session(b"token-2").unwrap().is_some(), "other sessions stay");
    // A session made by one process is seen, and ended, by another.
    let other = s.reopen();
    assert!(other.session(b"token-2").unwrap().is_some());
    other.end_session(b"token-2").unwrap();
    assert_eq!(s.session(b"token-2").unwrap(), None);
}

fn a_new_password_replaces_the_old_and_ends_that_worker_s_sessions(s: &Backend) {
    teams_and_leads(s);
    assert_eq!(s.password(&worker("lena")).unwrap(), None);
    s.set_password(&worker("lena"), "$argon2id$one", NOW).unwrap();
    assert_eq!(s.password(&worker("lena")).unwrap().as_deref(), Some("$argon2id$one"));

    s.create_session(b"lena-phone", &worker("lena"), "c1", NOW).unwrap();
    s.create_session(b"lena-laptop", &worker("lena"), "c2", NOW).unwrap();
    s.create_session(b"lars-laptop", &worker("lars"), "c3", NOW).unwrap();
    s.set_password(&worker("lena"), "$argon2id$two", NOW + 1).unwrap();
    assert_eq!(s.password(&worker("lena")).unwrap().as_deref(), Some("$argon2id$two"));
    assert_eq!(s.session(b"lena-phone").unwrap(), None);
    assert_eq!(s.session(b"lena-laptop").unwrap(), None);
    assert!(s.session(b"lars-laptop").unwrap().is_some(), "only hers end");
    assert_eq!(s.password(&worker("lars")).unwrap(), None);

    let err = s.set_password(&worker("nobody"), "$argon2id$x", NOW).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("nobody")), "{err}");
    assert_eq!(s.password(&worker("nobody")).unwrap(), None);
}

fn a_lead_reviews_their_own_team_first_then_added_ones(s: &Backend) {
    teams_and_leads(s);
    assert_eq!(s.lead_teams(&worker("lena")).unwrap(), [team("north")]);

    s.add_lead_team(&worker("lena"), &team("west")).unwrap();
    s.add_lead_team(&worker("lena"), &team("south")).unwrap();
    s.add_lead_team(&worker("lena"), &team("south")).unwrap();
    // Her own team leads even though it sorts after the added ones.
    assert_eq!(
        s.lead_teams(&worker("lena")).unwrap(),
        [team("north"), team("south"), team("west")]
    );
    assert_eq!(
        s.lead_teams(&worker("lars")).unwrap(),
        [team("south")],
        "others are untouched"
    );
    // Neither a worker nor a stranger reviews anything.
    assert!(s.lead_teams(&worker("wes")).unwrap().is_empty());
    assert!(s.lead_teams(&worker("nobody")).unwrap().is_empty());
}

fn only_a_lead_may_review_another_team_and_only_a_known_one(s: &Backend) {
    teams_and_leads(s);
    let err = s.add_lead_team(&worker("wes"), &team("south")).unwrap_err();
    assert!(
        matches!(&err, Error::BadRequest { what, .. } if what == "lead"),
        "{err}"
    );
    let err = s.add_lead_team(&worker("nobody"), &team("south")).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("nobody")), "{err}");
    let err = s.add_lead_team(&worker("lena"), &team("east")).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("east")), "{err}");
    assert_eq!(
        s.lead_teams(&worker("lena")).unwrap(),
        [team("north")],
        "nothing was added"
    );
}

fn alerts_go_to_every_lead_who_reviews_the_team(s: &Backend) {
    teams_and_leads(s);
    assert!(
        s.lead_emails(&team("north")).unwrap().is_empty(),
        "nobody has an address yet"
    );
    s.add_worker(&worker("lou"), "Lou", Role::Lead, &team("north")).unwrap();
    s.set_email(&worker("lena"), Some("lena@example.org")).unwrap();
    s.set_email(&worker("lou"), Some("Lou@example.org")).unwrap();
    s.set_email(&worker("lars"), Some("lars@example.org")).unwrap();
    // A worker's address never gets a lead's alert.
    s.set_email(&worker("wes"), Some("wes@example.org")).unwrap();

    // Byte order: upper case before lower, whatever the database's collation.
    assert_eq!(
        s.lead_emails(&team("north")).unwrap(),
        ["Lou@example.org", "lena@example.org"]
    );
    assert_eq!(s.lead_emails(&team("south")).unwrap(), ["lars@example.org"]);
    assert!(s.lead_emails(&team("west")).unwrap().is_empty());

    s.add_lead_team(&worker("lars"), &team("north")).unwrap();
    assert_eq!(
        s.lead_emails(&team("north")).unwrap(),
        ["Lou@example.org", "lars@example.org", "lena@example.org"]
    );
    // Two leads sharing an address get one alert.
    s.set_email(&worker("lou"), Some("lena@example.org")).unwrap();
    assert_eq!(
        s.lead_emails(&team("north")).unwrap(),
        ["lars@example.org", "lena@example.org"]
    );
    // Clearing an address takes its lead off the list.
    s.set_email(&worker("lars"), None).unwrap();
    assert_eq!(s.lead_emails(&team("north")).unwrap(), ["lena@example.org"]);
    assert!(s.lead_emails(&team("south")).unwrap().is_empty());

    let err = s.set_email(&worker("nobody"), Some("x@example.org")).unwrap_err();
    assert!(matches!(&err, Error::NotFound(m) if m.contains("nobody")), "{err}");
}

fn failed_sign_ins_are_counted_by_every_process_within_their_window(s: &Backend) {
    const WINDOW: i64 = 900;
    assert_eq!(s.sign_in_failures("lena").unwrap(), None);
    let other = s.reopen();
    // Two processes at once, each counting failures for the same username.
    std::thread::scope(|scope| {
        scope.spawn(|| (0..20).for_each(|i| s.record_sign_in_failure("lena", 1000 + i % 3, WINDOW).unwrap()));
        scope.spawn(|| (0..20).for_each(|i| other.record_sign_in_failure("lena", 1000 + i % 3, WINDOW).unwrap()));
    });
    assert_eq!(
        s.sign_in_failures("lena").unwrap(),
        Some((40, 1000)),
        "every failure counted once"
    );
    assert_eq!(other.sign_in_failures("lars").unwrap(), None, "per username");
    // A failure once the window has passed starts a new one.
    other.record_sign_in_failure("lena", 1000 + WINDOW, WINDOW).unwrap();
    assert_eq!(s.sign_in_failures("lena").unwrap(), Some((1, 1000 + WINDOW)));
    s.clear_sign_in_failures("lena").unwrap();
    assert_eq!(other.sign_in_failures("lena").unwrap(), None);
}

on_every_backend!(
    failed_sign_ins_are_counted_by_every_process_within_their_window,
    a_session_is_found_by_its_token_until_it_ends,
    a_new_password_replaces_the_old_and_ends_that_worker_s_sessions,
    a_lead_reviews_their_own_team_first_then_added_ones,
    only_a_lead_may_review_another_team_and_only_a_known_one,
    alerts_go_to_every_lead_who_reviews_the_team,
);
