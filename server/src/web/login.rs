//! Signing in and out. The sign-in form carries its own anti-forgery token (a cookie and a
//! field that must match) because no session exists yet; signing in always starts a new
//! session, so a token planted before sign-in is worth nothing after.

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use outpost_core::WorkerId;

use super::session::{self, Lead, SESSION_COOKIE, SIGN_IN_COOKIE};
use super::{PageError, SignInMethod, audit, layout};
use crate::AppState;
use crate::auth::{blocking, new_secret};
use crate::storage::Role;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(show).post(sign_in))
        .route("/logout", post(sign_out))
}

/// Where a sign-in may return to: a review page on this server, nothing else. No control
/// characters either: the redirect's Location header cannot carry them (found by the sign_in fuzz target).
pub fn safe_next(next: &str) -> bool {
    next.starts_with("/review") && !next.contains("//") && !next.contains('\\') && !next.chars().any(char::is_control)
}

async fn show(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let next = query.get("next").filter(|n| safe_next(n)).cloned();
    let notice = query.contains_key("signed_out").then_some("You have signed out.");
    form_page(&state, StatusCode::OK, next.as_deref(), None, notice)
}

fn form_page(
    state: &AppState,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let token = new_secret();
    let body = match state.web.identity.method() {
        SignInMethod::Password => password_form(&token, next, error, notice),
        SignInMethod::Redirect { url } => html! {
            h1 { "Sign in" }
            p { a href=(url) { "Sign in with your organisation's account" } }
        },
    };
    let cookie = format!("{SIGN_IN_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600");
    (
        status,
        [(header::SET_COOKIE, cookie)],
        layout::page("Sign in", None, body),
    )
        .into_response()
}

fn password_form(token: &str, next: Option<&str>, error: Option<&str>, notice: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(notice) = notice { p.ok role="status" { (notice) } }
        @if let Some(error) = error { p.alert role="alert" { (error) } }
        p { "Team leads sign in to review what their teams recorded." }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            @if let Some(next) = next { input type="hidden" name="next" value=(next); }
            div.field {
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username" required
                    autocapitalize="none" spellcheck="false";
            }
            div.field {
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
    }
}

/// A posted sign-in form whose anti-forgery token matched, before any password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInForm {
    pub username: String,
    /// Where to go after signing in: kept only when `safe_next` allows it.
    pub next: Option<String>,
}

/// Checks a posted sign-in form (its fields as axum's `Form` parses them) against the request's
/// sign-in cookie. The handler's own check, public so the fuzzer tests this code.
pub fn read_sign_in(fields: &HashMap<String, String>, headers: &HeaderMap) -> Result<SignInForm, PageError> {
    let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = session::cookie(headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        return Err(PageError::Forbidden(
            "the sign-in form had expired or did not come from this site; open the sign-in page and try again".into(),
        ));
    }
    Ok(SignInForm {
        username: fields.get("username").cloned().unwrap_or_default(),
        next: fields.get("next").filter(|n| safe_next(n)).cloned(),
    })
}

async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let SignInForm { username, next } = read_sign_in(&fields, &headers)?;
    let now = chrono::Utc::now().timestamp();
    let locked = {
        let (storage, web, username) = (state.storage.clone(), state.web.clone(), username.clone());
        blocking(move || web.throttle.locked_for(storage.as_ref(), &username, now)).await?
    };
    if let Some(wait) = locked {
        let minutes = (wait + 59) / 60;
        let message = format!("Too many failed attempts for this username. Try again in {minutes} minutes.");
        return Ok(form_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            next.as_deref(),
            Some(&message),
            None,
        ));
    }
    let client = crate::access::client_addr(peer.ip(), &headers, &state.trusted_proxies);
    let storage = state.storage.clone();
    let web = state.web.clone();
    let typed = username.clone();
    let (verified, known) = blocking(move || {
        // A failed sign-in is audited under the username only when it names someone: a
        // password typed into the username box must not reach the log.
        let known = WorkerId::new(typed.trim())
            .ok()
            .filter(|w| storage.worker(w).is_ok_and(|found| found.is_some()));
        let Some(worker) = web.identity.verify(storage.as_ref(), &fields)? else {
            return Ok((None, known));
        };
        Ok(match storage.worker(&worker)? {
            Some((Role::Lead, _)) => (Some(worker), known),
            _ => (None, known),
        })
    })
    .await?;
    let Some(worker) = verified else {
        let (storage, web, name) = (state.storage.clone(), state.web.clone(), username.clone());
        blocking(move || web.throttle.failed(storage.as_ref(), &name, now)).await?;
        let subject = known.map_or_else(|| "an unknown username".to_string(), |w| w.to_string());
        audit(&state, "web", &client.to_string(), "sign-in-failed", &subject, "").await?;
        return Ok(form_page(
            &state,
            StatusCode::UNAUTHORIZED,
            next.as_deref(),
            Some("The username or password is wrong, or this account does not review visits."),
            None,
        ));
    };
    let (storage, web, name) = (state.storage.clone(), state.web.clone(), username.clone());
    blocking(move || web.throttle.succeeded(storage.as_ref(), &name)).await?;
    let token = session::start(&state, worker.clone()).await?;
    audit(
        &state,
        &format!("{worker}/web"),
        &client.to_string(),
        "sign-in",
        worker.as_str(),
        "",
    )
    .await?;
    let mut response = Redirect::to(next.as_deref().unwrap_or("/review")).into_response();
    let headers = response.headers_mut();
    for cookie in [
        session::session_cookie(&token, &state.web.sessions),
        session::cleared_cookie(SIGN_IN_COOKIE),
    ] {
        headers.append(
            header::SET_COOKIE,
            cookie.parse().map_err(|_| PageError::BadRequest("cookie".into()))?,
        );
    }
    Ok(response)
}

async fn sign_out(
    State(state): State<AppState>,
    lead: Lead,
    Form(fields): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    lead.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let storage = state.storage.clone();
    let token_hash = lead.token_hash().to_vec();
    blocking(move || storage.end_session(&token_hash)).await?;
    audit(
        &state,
        &lead.audit_name(),
        &lead.from,
        "sign-out",
        lead.worker.as_str(),
        "",
    )
    .await?;
    Ok((
        [(header::SET_COOKIE, session::cleared_cookie(SESSION_COOKIE))],
        Redirect::to("/login?signed_out=1"),
    )
        .into_response())
}
