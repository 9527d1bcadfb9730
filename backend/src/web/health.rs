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

/// On Postgres the version is read on `/health`'s own connections, which
/// give up within half a second: a migration's lock on `secrets` does not
/// touch the history table, so it still answers 200; a database that cannot
/// answer in time gets a 503 with the reason, so a load balancer sends no
/// traffic to an instance whose database is not answering.
async fn check(state: &AppState) -> Health {
    let (status, schema_version, error) = match state.availability_async().await {
        Availability::Maintenance => ("maintenance", None, None),
        Availability::Unavailable(reason) => ("unavailable", None, Some(reason)),
        Availability::Serving => match state.schema_version().await {
            Some(Ok(version)) => ("ok", Some(version), None),
            Some(Err(e)) => ("unavailable", None, Some(format!("{e:#}"))),
            None => ("maintenance", None, None),
        },
    };
    Health {
        status,
        schema_version,
        error,
    }
}
