//! Requests a person's browser or phone sends before anyone is signed in: a device's enrolment
//! (JSON) and a team lead's sign-in form (a Cookie header and a urlencoded body).

use std::collections::HashMap;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect};
use outpost_core::sync::wire::EnrolRequest;
use outpost_server::Error;
use outpost_server::auth::{hash_enrolment_code, read_enrolment};
use outpost_server::web::session::{self, SIGN_IN_COOKIE};
use outpost_server::web::{PageError, SignInForm, read_sign_in};

/// Longest device label the server accepts, in characters (`auth::MAX_LABEL`).
const MAX_LABEL: usize = 64;

/// An enrolment body through the endpoint's own reader: refused by name, or read into a label
/// that is trimmed, 1 to 64 characters with no control characters, and a code whose stored form
/// ignores how it was typed (case, dashes, spaces).
pub fn enrolment(data: &[u8]) {
    let checked = match read_enrolment(data) {
        Ok(checked) => checked,
        Err(Error::BadRequest { what, reason }) => {
            assert!(
                ["enrolment request", "device label", "device id"].contains(&what.as_str()),
                "refused as an unexpected {what}: {reason}"
            );
            assert!(!reason.is_empty());
            return;
        }
        Err(other) => panic!("an enrolment body refused with an unexpected kind of error: {other}"),
    };
    let label = &checked.label;
    let chars = label.chars().count();
    assert!((1..=MAX_LABEL).contains(&chars), "a label of {chars} characters");
    assert_eq!(label.trim(), label, "a label is trimmed");
    assert!(
        !label.chars().any(char::is_control),
        "a label with control characters: {label:?}"
    );
    assert_eq!(checked.code_hash.len(), 32);

    // The same request sent again, with the label as read, reads the same.
    let request: EnrolRequest = match serde_json::from_slice(data) {
        Ok(request) => request,
        Err(e) => panic!("read_enrolment accepted a body serde_json refuses: {e}"),
    };
    let resent = EnrolRequest {
        label: label.clone(),
        ..request.clone()
    };
    let body = match serde_json::to_vec(&resent) {
        Ok(body) => body,
        Err(e) => panic!("an enrolment request does not serialise: {e}"),
    };
    match read_enrolment(&body) {
        Ok(again) => assert_eq!(again, checked, "an enrolment read differently when sent again"),
        Err(e) => panic!("an enrolment accepted once is refused when sent again: {e}"),
    }

    // A code typed in lower case, or with a dash or space in the middle, is the same code.
    let code = &request.code;
    let middle = code
        .char_indices()
        .nth(code.chars().count() / 2)
        .map_or(code.len(), |(i, _)| i);
    for typed in [
        code.to_ascii_lowercase(),
        format!("{}-{}", &code[..middle], &code[middle..]),
        format!(" {} ", code),
    ] {
        assert_eq!(
            hash_enrolment_code(&typed),
            checked.code_hash,
            "{code:?} typed as {typed:?}"
        );
    }
}

/// A target input for `sign_in`: the Cookie header's value, a newline, then the form body.
pub fn sign_in_input(cookie: &str, body: &str) -> Vec<u8> {
    format!("{cookie}\n{body}").into_bytes()
}

/// A posted sign-in form (`sign_in_input`) through the parser axum's `Form` uses and the
/// handler's own check, before any password is: accepted only with the sign-in cookie's token,
/// and then any `next` it keeps is a review page on this server that redirects cleanly.
pub fn sign_in(data: &[u8]) {
    let (cookie, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(cookie) {
        headers.insert(COOKIE, value);
    }
    // axum's `Form` is this deserializer over the body; a body it refuses never reaches the handler.
    let Ok(fields) = serde_urlencoded::from_bytes::<HashMap<String, String>>(body) else {
        return;
    };
    let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    match read_sign_in(&fields, &headers) {
        Ok(SignInForm { username, next }) => {
            assert!(
                !expected.is_empty() && sent == expected,
                "accepted without the cookie's token"
            );
            assert_eq!(Some(&username), fields.get("username").or(Some(&String::new())));
            if let Some(next) = next {
                assert!(
                    next.starts_with("/review") && !next.contains("//") && !next.contains('\\'),
                    "sign-in would return to {next:?}"
                );
                let redirect = Redirect::to(&next).into_response();
                assert!(
                    redirect.status().is_redirection(),
                    "sign-in would answer {} instead of returning to {next:?}",
                    redirect.status()
                );
            }
        }
        Err(PageError::Forbidden(reason)) => {
            assert!(
                expected.is_empty() || sent != expected,
                "refused with the cookie's token"
            );
            assert!(!reason.is_empty());
        }
        Err(other) => panic!("a sign-in form refused with an unexpected kind of error: {other:?}"),
    }
}
