//! The browser harness checks what it claims to: `tests/browser/fixture.mjs` runs `checkPage`
//! on pages that break each rule (and on pages that keep them), and a session survives between
//! scripts through the `state` file.
#![allow(clippy::unwrap_used)]

use outpost_tests::browser;
use serde_json::{Value, json};

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn check_page_fails_each_broken_rule_and_passes_a_sound_page() {
    let report = browser::run("fixture.mjs", &json!({}));
    let results = &report["results"];

    let unlabelled = &results["unlabelled"];
    assert_eq!(unlabelled["passed"], false, "{unlabelled}");
    assert_eq!(strings(&unlabelled["axe"]), ["label"], "{unlabelled}");
    assert!(unlabelled["error"].as_str().unwrap().contains("label"), "{unlabelled}");

    let labelled = &results["labelled"];
    assert_eq!(labelled["passed"], true, "{labelled}");
    assert_eq!(labelled["summary"]["heading"], "Fixture");
    assert_eq!(labelled["summary"]["violations"], 0);
    assert_eq!(labelled["summary"]["focusables"], 1);
    let screenshot = labelled["summary"]["screenshot"].as_str().unwrap();
    let png = std::fs::read(screenshot).unwrap_or_else(|e| panic!("{screenshot}: {e}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{screenshot} is not a PNG");

    let hidden = &results["hidden focus"];
    assert_eq!(hidden["passed"], false, "{hidden}");
    assert!(strings(&hidden["axe"]).is_empty(), "{hidden}");
    let keyboard = strings(&hidden["keyboard"]);
    assert!(
        keyboard.len() == 1 && keyboard[0].starts_with("no visible focus indicator"),
        "{hidden}"
    );

    let trap = &results["focus trap"];
    assert_eq!(trap["passed"], false, "{trap}");
    let keyboard = strings(&trap["keyboard"]);
    assert!(
        keyboard.len() == 1 && keyboard[0].starts_with("never reached with Tab: button#save"),
        "{trap}"
    );

    // A skip link, a radio group reached through one of its buttons, a disabled button and
    // hidden elements, under a CSP that forbids every script of the page's own.
    let csp = &results["strict csp"];
    assert_eq!(csp["passed"], true, "{csp}");
    assert_eq!(csp["summary"]["focusables"], 2, "{csp}");

    let wrong = &results["wrong heading"];
    assert_eq!(wrong["passed"], false, "{wrong}");
    let error = wrong["error"].as_str().unwrap();
    assert!(
        error.contains("\"Caseload\"") && error.contains("\"Fixture\""),
        "{error}"
    );
}

#[test]
fn a_session_carries_over_between_scripts_through_its_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("session.json");

    let first = browser::run(
        "fixture-session.mjs",
        &json!({ "state": state, "remember": "phase one" }),
    );
    assert_eq!(first["results"]["recall"]["cookie"], "phase one");
    assert!(state.is_file(), "no state saved at {}", state.display());

    let second = browser::run("fixture-session.mjs", &json!({ "state": state, "expect": "phase one" }));
    assert_eq!(second["results"]["recall"]["cookie"], "phase one");
}

#[test]
#[should_panic(expected = "in step \"recall\": expected cookie \"phase one\", found null")]
fn a_failing_step_fails_the_test_naming_the_step_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("never-saved.json");
    browser::run("fixture-session.mjs", &json!({ "state": fresh, "expect": "phase one" }));
}
