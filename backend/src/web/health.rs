//! `GET /health`, for load balancers and `cargo xtask migrate`: outside the
//! API's gate so it answers in maintenance too, and reports both the schema
//! version the database is at and the one this build expects.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::state::{AppState, Availability};
use crate::{maintenance::RETRY_AFTER_SECONDS, schema};

/// What `/health` found: a status word, the database's schema version when
/// serving, and the reason when the database is unavailable.
struct Health {
    status: &'static str,
    schema_version: Option<i64>,
    error: Option<String>,
}

/// `GET /health`: 200 with status `ok` when serving, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> Response {
    let health = check(&state).await;
    let code = if health.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": health.status,
        "version": crate::VERSION,
        "schema_version": health.schema_version,
        "expected_schema_version": schema::expected_version(),
    });
    if let Some(error) = health.error {
        body["error"] = json!(error);
    }
    let mut response = (code, Json(body)).into_response();
    if code != StatusCode::OK {
        response
            .headers_mut()
            .insert(RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    }
    response
}

async fn check(state: &AppState) -> Health {
    let (status, schema_version, error) = match state.availability_async().await {
        Availability::Maintenance => ("maintenance", None, None),
        Availability::Unavailable(reason) => ("unavailable", None, Some(reason)),
        Availability::Serving => match state.with_db(|db| db.applied_version()).await {
            Ok(Ok(version)) => ("ok", Some(version), None),
            Ok(Err(e)) => ("unavailable", None, Some(format!("{e:#}"))),
            Err(_) => ("maintenance", None, None),
        },
    };
    Health {
        status,
        schema_version,
        error,
    }
}
