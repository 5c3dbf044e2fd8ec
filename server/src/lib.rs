//! Outpost's sync server. This first version only answers health checks; sync over TLS, device
//! enrolment, storage and the team lead's pages arrive with the sync and review work.

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

/// The whole HTTP application, so tests can drive it without a socket.
pub fn app() -> Router {
    Router::new().route("/health", get(health))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn health_answers_ok_and_other_paths_are_not_found() {
        let response = app()
            .oneshot(Request::get("/health").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["status"], "ok");

        let response = app()
            .oneshot(Request::get("/records").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
