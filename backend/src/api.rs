//! The secrets API: JSON in and out, never a secret value in an error or a log.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, Request, State, rejection::JsonRejection},
    http::{StatusCode, header::CONTENT_LENGTH},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;

use crate::{app::AppState, db};

/// Longest accepted secret name, in characters (also a CHECK in the schema).
pub const MAX_NAME_LEN: usize = 128;
/// Largest accepted secret value, in bytes (also a CHECK in the schema).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest accepted expiry: ten years.
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Request bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 2 * MAX_VALUE_BYTES;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route("/secrets/{name}", get(reveal).delete(remove))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API route") })
        .layer(middleware::from_fn(refuse_declared_oversize))
        // Catches bodies without a Content-Length (chunked) while they are read.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Refuses a body whose declared length is over the limit before reading any of it.
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => too_large().into_response(),
        _ => next.run(request).await,
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    name: String,
    value: String,
    ttl_seconds: Option<u64>,
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<NewSecret>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(new) = body.map_err(ApiError::from_rejection)?;
    let ttl_seconds = validate(&new)?;
    let name = new.name.clone();
    let meta = state
        .with_db(move |db| db.insert(&new.name, &new.value, ttl_seconds))
        .await?
        .map_err(|e| match e {
            db::StoreError::Duplicate => ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "a secret named `{name}` already exists: delete it first or choose another name"
                ),
            ),
            db::StoreError::Other(e) => ApiError::internal(format!("{e:#}")),
        })?;
    Ok((StatusCode::CREATED, Json(meta)).into_response())
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let secrets = state
        .with_db(|db| db.list())
        .await?
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "secrets": secrets })).into_response())
}

async fn reveal(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let lookup = name.clone();
    let secret = state
        .with_db(move |db| db.reveal(&lookup))
        .await?
        .map_err(ApiError::internal)?;
    match secret {
        Some(secret) => Ok(Json(secret).into_response()),
        None => Err(not_found(&name)),
    }
}

async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let lookup = name.clone();
    let deleted = state
        .with_db(move |db| db.delete(&lookup))
        .await?
        .map_err(ApiError::internal)?;
    if deleted {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(&name))
    }
}

/// Checks a new secret; returns its expiry in seconds, if any.
fn validate(new: &NewSecret) -> Result<Option<i64>, ApiError> {
    check_name(&new.name)?;
    if new.value.is_empty() {
        return Err(ApiError::bad_request("`value` must not be empty"));
    }
    if new.value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "`value` is {} bytes; the limit is {MAX_VALUE_BYTES}",
            new.value.len()
        )));
    }
    match new.ttl_seconds {
        Some(0) => Err(ApiError::bad_request(
            "`ttl_seconds` must be at least 1 (omit it for no expiry)",
        )),
        Some(ttl) if ttl > MAX_TTL_SECONDS => Err(ApiError::bad_request(format!(
            "`ttl_seconds` may be at most {MAX_TTL_SECONDS} (ten years)"
        ))),
        Some(ttl) => Ok(i64::try_from(ttl).ok()),
        None => Ok(None),
    }
}

/// Names travel in URL paths, so they are limited to a URL-safe alphabet.
fn check_name(name: &str) -> Result<(), ApiError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || !valid_chars {
        return Err(ApiError::bad_request(format!(
            "`name` must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '-', '_' or '.'"
        )));
    }
    Ok(())
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no secret named `{name}` (it may have expired)"),
    )
}

/// An error answer: `{"error": "..."}` with a status code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unavailable(message: impl Into<String>, retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// Logs the cause; the client only learns that it was our fault.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the service log",
        )
    }

    /// serde's messages can quote the request body, which may hold a secret,
    /// so only the status and a description of the expected shape go back.
    fn from_rejection(rejection: JsonRejection) -> Self {
        const SHAPE: &str = "request body must be JSON with header `Content-Type: application/json` \
             and the shape {\"name\": string, \"value\": string, \"ttl_seconds\": integer (optional)}";
        // 413 and 415 say something precise; every other malformed body is a plain 400.
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, SHAPE)
            }
            _ => Self::bad_request(SHAPE),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
