//! Device credentials and enrolment. An admin issues a one-time code for a worker; a device
//! trades it (once) for a credential, and presents that credential as a bearer token on every
//! sync. The server keeps only hashes of codes and credentials.

use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use outpost_core::DeviceId;
use outpost_core::sync::wire::{ENROL_PATH, EnrolRequest, EnrolResponse};
use rand::{Rng, RngCore};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::access::ClientAddr;
use crate::error::{Error, Result};
use crate::storage::{AuditEntry, Departed, Departure, Device, Storage};

/// Longest device label, in characters; it is shown in the admin's device list.
const MAX_LABEL: usize = 64;

/// Enrolment code characters: no 0/O or 1/I, so a code read aloud or off paper is typed right.
/// 32 symbols, so each carries 5 bits.
const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_GROUPS: usize = 4;
const CODE_GROUP_LEN: usize = 4;

/// A new device credential: 256 random bits, base64url without padding.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a credential. A single fast SHA-256 is enough because credentials are
/// 256 random bits, not passwords: there is no dictionary to try, so slowing guesses buys nothing.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new one-time enrolment code such as `K7QM-3XPD-W9HT-RB2F`: 16 symbols, 80 random bits.
pub fn new_enrolment_code() -> String {
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..CODE_GROUPS)
        .map(|_| {
            (0..CODE_GROUP_LEN)
                .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
                .collect()
        })
        .collect();
    groups.join("-")
}

/// The stored form of an enrolment code, as typed: case, dashes and spaces do not matter. The
/// code's 80 random bits are what keep it unguessable, as with a credential.
pub fn hash_enrolment_code(code: &str) -> Vec<u8> {
    let normalised: String = code
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hash_secret(&normalised)
}

/// The enrolment endpoint; it needs no credential, only a code.
pub fn router() -> Router<AppState> {
    Router::new().route(ENROL_PATH, post(enrol))
}

/// An enrolment request read and checked, before any storage is touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEnrolment {
    /// The code's stored form (`hash_enrolment_code`).
    pub code_hash: Vec<u8>,
    /// Trimmed, 1 to `MAX_LABEL` characters, no control characters.
    pub label: String,
    /// The id the device had before, when it enrols again after a restore.
    pub device: Option<DeviceId>,
}

/// Reads an enrolment body (JSON `EnrolRequest`), refusing a malformed body, a bad label or a
/// bad device id by name. The endpoint's own parser, public so the fuzzer tests this code.
pub fn read_enrolment(body: &[u8]) -> Result<CheckedEnrolment> {
    // Parsed here rather than by axum's `Json`, so a malformed body is answered as a `Problem`.
    let request: EnrolRequest =
        serde_json::from_slice(body).map_err(|e| Error::bad("enrolment request", e.to_string()))?;
    let label = check_label(&request.label)?;
    let device = match &request.device {
        Some(id) => Some(DeviceId::new(id.as_str()).map_err(|e| Error::bad("device id", e.to_string()))?),
        None => None,
    };
    Ok(CheckedEnrolment {
        code_hash: hash_enrolment_code(&request.code),
        label,
        device,
    })
}

async fn enrol(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    body: Bytes,
) -> Result<Json<EnrolResponse>> {
    // Per client address: enrolment needs no credential, so nothing else names the caller.
    state.limits.enrol.check(&from)?;
    let CheckedEnrolment {
        code_hash,
        label,
        device,
    } = read_enrolment(&body)?;
    // A device the server lost in a restore keeps its id; an id the server knows is refused by
    // the storage, so nobody takes over an enrolled device this way.
    let device = match device {
        Some(id) => id,
        None => DeviceId::new(format!("dev-{}", uuid::Uuid::new_v4()))?,
    };
    let credential = new_secret();
    let credential_hash = hash_secret(&credential);
    let now = chrono::Utc::now().timestamp();

    let storage = state.storage.clone();
    let sync = state.sync.clone();
    let (enrolled, lease) = blocking(move || {
        let enrolled = storage.enrol(&code_hash, &device, &label, &credential_hash, now)?;
        storage.audit(&AuditEntry {
            at: now,
            who: format!("{}/{}", enrolled.worker, enrolled.device),
            action: "enrol-device".into(),
            subject: enrolled.device.to_string(),
            detail: format!("team {}", enrolled.team),
            from,
        })?;
        let lease = sync.lease(&enrolled)?;
        Ok((enrolled, lease))
    })
    .await?;
    tracing::info!(worker = %enrolled.worker, device = %enrolled.device, "device enrolled");
    Ok(Json(EnrolResponse {
        worker: enrolled.worker.to_string(),
        device: enrolled.device.to_string(),
        team: enrolled.team.to_string(),
        credential,
        role: Some(enrolled.role.code().to_string()),
        // The device pins this key: leases signed by any other are refused.
        server_key: Some(ByteBuf::from(state.sync.key().public_key().to_vec())),
        lease: Some(lease),
    }))
}

/// The label trimmed, 1 to `MAX_LABEL` characters, with no control characters (it is printed
/// in the admin's terminal).
fn check_label(label: &str) -> Result<String> {
    let label = label.trim();
    let len = label.chars().count();
    if !(1..=MAX_LABEL).contains(&len) {
        return Err(Error::bad(
            "device label",
            format!("must be 1 to {MAX_LABEL} characters, got {len}"),
        ));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::bad("device label", "must not contain control characters"));
    }
    Ok(label.to_string())
}

/// The enrolled device in service whose credential the request carries as
/// `Authorization: Bearer <credential>`. Anything else is refused with 401 before the body is
/// read, so nothing a refused device sends is stored: a revoked device's as `revoked` (it must
/// wipe), a retired one's as `retired`, any other as `unauthenticated`.
#[derive(Debug, Clone)]
pub struct AuthDevice(pub Device);

impl FromRequestParts<AppState> for AuthDevice {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let credential_hash = hash_secret(bearer(parts)?);
        let ClientAddr(from) = ClientAddr::of(parts, &state.trusted_proxies);
        let storage = state.storage.clone();
        blocking(move || match storage.authenticate(&credential_hash)? {
            Some(device) => Ok(AuthDevice(device)),
            None => Err(refusal(storage.as_ref(), &credential_hash, from)?),
        })
        .await
    }
}

/// Why a credential that does not authenticate is refused. A revoked device is told to wipe,
/// which is audited the first time it hears so.
fn refusal(storage: &dyn Storage, credential_hash: &[u8], from: String) -> Result<Error> {
    let now = chrono::Utc::now().timestamp();
    Ok(match storage.departed(credential_hash, now)? {
        Some(Departed {
            device,
            departure: Departure::Revoked,
            first_wipe_order,
        }) => {
            if first_wipe_order {
                storage.audit(&AuditEntry {
                    at: now,
                    who: "server".into(),
                    action: "wipe-ordered".into(),
                    subject: device.to_string(),
                    detail: "the revoked device made contact and was told to wipe its store".into(),
                    from,
                })?;
            }
            Error::Revoked("an administrator revoked it; it must wipe its store now".into())
        }
        Some(Departed {
            departure: Departure::Retired,
            ..
        }) => Error::Retired("everything it held reached the server; it must wipe its store".into()),
        None => Error::Unauthenticated("the device credential is unknown".into()),
    })
}

/// The credential in a bearer Authorization header. Errors never quote the header: it may hold
/// a real credential.
fn bearer(parts: &Parts) -> Result<&str> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        Error::Unauthenticated("no device credential: send Authorization: Bearer <credential>".into())
    })?;
    let malformed = || Error::Unauthenticated("the Authorization header is not a Bearer credential".into());
    let value = header.to_str().map_err(|_| malformed())?;
    let (scheme, credential) = value.split_once(' ').ok_or_else(malformed)?;
    let credential = credential.trim();
    // The scheme is case-insensitive (RFC 9110).
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(malformed());
    }
    Ok(credential)
}

/// Runs blocking storage work on tokio's blocking pool, off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("a storage task did not finish: {e}")))?
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use outpost_core::sync::wire::Problem;
    use outpost_core::{TeamId, WorkerId};
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::{Accounts, Role, ScopePolicy, Storage};

    struct Fixture {
        dir: tempfile::TempDir,
        storage: Arc<SqliteStorage>,
        state: AppState,
    }

    /// Team `north`, worker `ann`, and the enrolment codes given, valid for an hour.
    fn fixture(codes: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(SqliteStorage::open(dir.path().join("server.db")).unwrap());
        let team = TeamId::new("north").unwrap();
        let worker = WorkerId::new("ann").unwrap();
        storage.create_team(&team, "North", ScopePolicy::Team).unwrap();
        storage.add_worker(&worker, "Ann", Role::Worker, &team).unwrap();
        let expires = chrono::Utc::now().timestamp() + 3600;
        for code in codes {
            storage
                .add_enrolment_code(&worker, &hash_enrolment_code(code), expires)
                .unwrap();
        }
        let state = AppState::new(storage.clone() as Arc<dyn Storage>).unwrap();
        Fixture { dir, storage, state }
    }

    async fn post_enrol(state: &AppState, body: serde_json::Value) -> (StatusCode, Vec<u8>) {
        let request = Request::post(ENROL_PATH)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = crate::app(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes().to_vec(),
        )
    }

    async fn enrol_ok(state: &AppState, code: &str) -> EnrolResponse {
        let (status, body) = post_enrol(state, json!({ "code": code, "label": "Ann's phone" })).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn codes_are_typeable_and_normalised() {
        let code = new_enrolment_code();
        assert_eq!(code.len(), 19, "{code}");
        assert!(
            code.chars().all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8))),
            "{code}"
        );
        assert_ne!(code, new_enrolment_code());
        let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
        assert_eq!(hash_enrolment_code(&typed), hash_enrolment_code(&code));
        assert_eq!(URL_SAFE_NO_PAD.decode(new_secret()).unwrap().len(), 32);
    }

    #[tokio::test]
    async fn enrolment_returns_a_credential_and_stores_only_its_hash() {
        let f = fixture(&["AAAA-BBBB-CCCC-DDDD"]);
        // Typed loosely, as a person might.
        let response = enrol_ok(&f.state, "aaaa bbbb cccc dddd").await;
        assert_eq!((response.worker.as_str(), response.team.as_str()), ("ann", "north"));
        assert!(response.device.starts_with("dev-"), "{}", response.device);
        // The key the device pins, and a first lease it signed.
        let key = response.server_key.clone().unwrap();
        assert_eq!(key.as_slice(), f.state.sync.key().public_key());
        let lease = response.lease.clone().unwrap();
        assert_eq!(lease.device, response.device);
        let message = outpost_core::sync::wire::Lease::message(&lease.device, lease.issued_at, lease.expires_at);
        assert!(crate::signing::verify(&key, &message, &lease.signature));

        let stored: Vec<u8> = rusqlite::Connection::open(f.dir.path().join("server.db"))
            .unwrap()
            .query_row("SELECT credential_hash FROM devices", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, hash_secret(&response.credential));
        assert_ne!(stored, response.credential.as_bytes());
        let device = f.storage.authenticate(&stored).unwrap().unwrap();
        assert_eq!(device.device.as_str(), response.device);
        assert_eq!(device.worker.as_str(), "ann");

        let audit = f.storage.audit_log(10).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "enrol-device");
        assert_eq!(audit[0].who, format!("ann/{}", response.device));
        let logged = format!("{audit:?}");
        assert!(
            !logged.contains(&response.credential) && !logged.contains("AAAA"),
            "{logged}"
        );
    }

    #[tokio::test]
    async fn a_code_works_once_and_a_wrong_one_never() {
        let f = fixture(&["AAAA-BBBB-CCCC-DDDD"]);
        enrol_ok(&f.state, "AAAA-BBBB-CCCC-DDDD").await;
        for code in ["AAAA-BBBB-CCCC-DDDD", "ZZZZ-ZZZZ-ZZZZ-ZZZZ", ""] {
            let (status, body) = post_enrol(&f.state, json!({ "code": code, "label": "tablet" })).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{code}");
            let problem: Problem = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem.code, "unauthenticated");
            assert!(
                problem.message.contains("unknown, used or expired"),
                "{}",
                problem.message
            );
        }
        assert_eq!(f.storage.devices().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_bad_label_or_body_is_refused_by_name() {
        let f = fixture(&["AAAA-BBBB-CCCC-DDDD"]);
        for label in ["   ", &"x".repeat(65), "tab\u{7}let"] {
            let (status, body) = post_enrol(&f.state, json!({ "code": "AAAA-BBBB-CCCC-DDDD", "label": label })).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            let problem: Problem = serde_json::from_slice(&body).unwrap();
            assert!(problem.message.contains("device label"), "{}", problem.message);
        }
        let (status, body) = post_enrol(&f.state, json!({ "code": "AAAA-BBBB-CCCC-DDDD" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert!(problem.message.contains("enrolment request"), "{}", problem.message);
        // The refusals did not spend the code.
        enrol_ok(&f.state, "AAAA-BBBB-CCCC-DDDD").await;
    }

    async fn whoami(state: &AppState, authorization: Option<&str>) -> (StatusCode, String) {
        let app = Router::new()
            .route(
                "/whoami",
                get(|AuthDevice(d): AuthDevice| async move { d.device.to_string() }),
            )
            .with_state(state.clone());
        let mut request = Request::get("/whoami");
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn only_a_current_credential_authenticates() {
        let f = fixture(&["AAAA-BBBB-CCCC-DDDD"]);
        let enrolled = enrol_ok(&f.state, "AAAA-BBBB-CCCC-DDDD").await;
        let header = format!("Bearer {}", enrolled.credential);

        assert_eq!(
            whoami(&f.state, Some(&header)).await,
            (StatusCode::OK, enrolled.device.clone())
        );
        let lower = format!("bearer {}", enrolled.credential);
        assert_eq!(whoami(&f.state, Some(&lower)).await.0, StatusCode::OK);

        let basic = format!("Basic {}", enrolled.credential);
        for refused in [
            None,
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer not-a-credential"),
            Some(&*basic),
        ] {
            let (status, body) = whoami(&f.state, refused).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused:?}");
            assert!(!body.contains(&enrolled.credential), "{body}");
        }

        let (_, body) = whoami(&f.state, Some("Bearer not-a-credential")).await;
        let problem: Problem = serde_json::from_str(&body).unwrap();
        assert_eq!(problem.code, "unauthenticated");

        let device = DeviceId::new(enrolled.device).unwrap();
        f.storage.revoke(&device, chrono::Utc::now().timestamp()).unwrap();
        for _ in 0..2 {
            let (status, body) = whoami(&f.state, Some(&header)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let problem: Problem = serde_json::from_str(&body).unwrap();
            assert_eq!(problem.code, "revoked");
            assert!(problem.message.contains("wipe"), "{}", problem.message);
        }
        let orders: Vec<_> = f
            .storage
            .audit_log(10)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "wipe-ordered")
            .collect();
        assert_eq!(orders.len(), 1, "audited the first time: {orders:?}");
        assert_eq!(orders[0].subject, device.as_str());
    }
}
