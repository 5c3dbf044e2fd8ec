//! Browser sessions for team leads: a random token in a Secure, HttpOnly, SameSite cookie, kept
//! on the server only as its hash, with an idle and an absolute expiry; and the per-session
//! token every form carries against cross-site request forgery.

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use outpost_core::{TeamId, WorkerId};

use super::PageError;
use crate::AppState;
use crate::auth::{blocking, hash_secret, new_secret};
use crate::error::Result;
use crate::storage::Role;

/// `__Host-`: the browser keeps it only if Secure, for this host, with Path=/.
pub const SESSION_COOKIE: &str = "__Host-outpost-session";
/// The sign-in form's own anti-forgery token, before any session exists.
pub const SIGN_IN_COOKIE: &str = "__Host-outpost-sign-in";

/// How long sessions last, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Signed out after this long without a request.
    pub idle: i64,
    /// Signed out this long after signing in, however busy.
    pub absolute: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: 30 * 60,
            absolute: 10 * 60 * 60,
        }
    }
}

/// A signed-in team lead, with the teams whose records they may see.
#[derive(Debug, Clone)]
pub struct Lead {
    pub worker: WorkerId,
    pub name: String,
    pub teams: Vec<TeamId>,
    pub csrf: String,
    /// The address the request came from, for the audit trail.
    pub from: String,
    token_hash: Vec<u8>,
}

impl Lead {
    /// Refuses a form whose anti-forgery token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "the form's security token did not match your session; go back, reload the page and try again".into(),
            ))
        }
    }

    pub fn may_see(&self, team: &TeamId) -> bool {
        self.teams.contains(team)
    }

    /// Who, in the audit log.
    pub fn audit_name(&self) -> String {
        format!("{}/web", self.worker)
    }

    pub(super) fn token_hash(&self) -> &[u8] {
        &self.token_hash
    }
}

impl FromRequestParts<AppState> for Lead {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let refused = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                PageError::SignIn {
                    next: Some(parts.uri.path_and_query().map_or("/review", |p| p.as_str()).to_string()),
                }
            } else {
                PageError::Forbidden("you are not signed in, or your session has ended; sign in again".into())
            }
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(refused());
        };
        let token_hash = hash_secret(token);
        let storage = state.storage.clone();
        let policy = state.web.sessions;
        let found = {
            let token_hash = token_hash.clone();
            blocking(move || {
                let now = chrono::Utc::now().timestamp();
                let Some(session) = storage.session(&token_hash)? else {
                    return Ok(None);
                };
                if now - session.seen_at > policy.idle || now - session.created_at > policy.absolute {
                    storage.end_session(&token_hash)?;
                    return Ok(None);
                }
                if session.role != Role::Lead {
                    return Ok(None);
                }
                // One write a minute at most keeps the idle clock right without a write per page.
                if now - session.seen_at >= 60 {
                    storage.touch_session(&token_hash, now)?;
                }
                let teams = storage.lead_teams(&session.worker)?;
                Ok(Some((session, teams)))
            })
            .await?
        };
        let Some((session, teams)) = found else {
            return Err(refused());
        };
        Ok(Lead {
            worker: session.worker,
            name: session.name,
            teams,
            csrf: session.csrf,
            from: crate::access::ClientAddr::of(parts, &state.trusted_proxies).0,
            token_hash,
        })
    }
}

/// A new session for `worker`: the cookie's token (returned) and its form token (stored).
pub async fn start(state: &AppState, worker: WorkerId) -> Result<String> {
    let token = new_secret();
    let token_hash = hash_secret(&token);
    let storage = state.storage.clone();
    blocking(move || storage.create_session(&token_hash, &worker, &new_secret(), chrono::Utc::now().timestamp()))
        .await?;
    Ok(token)
}

pub fn session_cookie(token: &str, policy: &SessionPolicy) -> String {
    // Lax: a link to a visit from the safeguarding email opens signed in; every state change
    // is a POST that also carries the form token.
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        policy.absolute
    )
}

pub fn cleared_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A cookie's value from the request, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; __Host-outpost-session=tok; b=".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(cookie(&headers, "outpost-session"), None);
    }

    #[test]
    fn session_cookies_are_secure_http_only_and_same_site() {
        let set = session_cookie("tok", &SessionPolicy::default());
        for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/", "__Host-"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
