//! The secrets API under `/api`: JSON in and out, never a secret value in an
//! error or a log. Handlers validate the request, run one store operation
//! through the shared state, and map the answer; they know nothing of the
//! router they are mounted in, of maintenance mode or of tokens (`guard`,
//! then `auth`, run first).

use axum::{
    Extension, Json, Router,
    extract::{
        DefaultBodyLimit, Path, Request, State,
        rejection::{JsonRejection, PathRejection},
    },
    http::{StatusCode, header::CONTENT_LENGTH},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    auth::{Presented, with_db_as},
    error::ApiError,
    state::AppState,
};
use crate::store::{Db, StoreError};

/// Longest accepted secret name, in characters (also a CHECK in the schema).
pub const MAX_NAME_LEN: usize = 128;
/// Largest accepted secret value, in bytes (also a CHECK in the schema).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest accepted expiry: ten years.
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Request bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 2 * MAX_VALUE_BYTES;

/// The API's routes, relative to `/api`, with the body-size limits.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route("/secrets/{name}", get(reveal).delete(remove))
        .fallback(no_such_route)
        .method_not_allowed_fallback(no_such_method)
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `work`'s answer, once the token is proven on the same connection (see
/// [`with_db_as`]), carrying the token's name for the request's log line;
/// the 401 (or the 503 of a database that is not there) otherwise.
async fn as_token<F>(state: &AppState, token: Presented, work: F) -> Response
where
    F: FnOnce(&mut Db, &str) -> Result<Response, ApiError> + Send + 'static,
{
    match with_db_as(state, token, work).await {
        Err(refused_or_unavailable) => refused_or_unavailable,
        Ok((result, name)) => {
            let mut response = result.unwrap_or_else(IntoResponse::into_response);
            response.extensions_mut().insert(name);
            response
        }
    }
}

/// Unknown routes and methods answer only a caller with a valid token:
/// anyone else gets the same 401 as everywhere.
async fn no_such_route(
    State(state): State<AppState>,
    Extension(token): Extension<Presented>,
) -> Response {
    as_token(&state, token, |_, _| {
        Err(ApiError::new(StatusCode::NOT_FOUND, "no such API route"))
    })
    .await
}

async fn no_such_method(
    State(state): State<AppState>,
    Extension(token): Extension<Presented>,
) -> Response {
    as_token(&state, token, |_, _| {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this API route does not take that method",
        ))
    })
    .await
}

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

/// serde's messages can quote the request body, which may hold a secret,
/// so only the status and a description of the expected shape go back.
fn rejected_body(rejection: JsonRejection) -> ApiError {
    const SHAPE: &str = "request body must be JSON with header `Content-Type: application/json` \
         and the shape {\"name\": string, \"value\": string, \"ttl_seconds\": integer (optional)}";
    // 413 and 415 say something precise; every other malformed body is a plain 400.
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, SHAPE)
        }
        _ => ApiError::bad_request(SHAPE),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    name: String,
    value: String,
    ttl_seconds: Option<u64>,
}

/// `POST /api/secrets`: 201 with the new secret's name and dates.
/// Every handler proves the token first (the same 401 for anything it
/// would find), then checks the request, then works: all on one connection.
async fn create(
    State(state): State<AppState>,
    Extension(token): Extension<Presented>,
    body: Result<Json<NewSecret>, JsonRejection>,
) -> Response {
    let vault = state.vault();
    as_token(&state, token, move |db, _| {
        let Json(new) = body.map_err(rejected_body)?;
        let ttl_seconds = validate(&new)?;
        let meta = db
            .insert(&vault, &new.name, &new.value, ttl_seconds)
            .map_err(|e| insert_failed(&new.name, e))?;
        Ok((StatusCode::CREATED, Json(meta)).into_response())
    })
    .await
}

fn insert_failed(name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate => ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "a secret named `{name}` already exists: delete it first or choose another name"
            ),
        ),
        StoreError::Other(e) => ApiError::internal(format!("{e:#}")),
    }
}

/// `GET /api/secrets`: every live secret's name and dates, never a value.
async fn list(State(state): State<AppState>, Extension(token): Extension<Presented>) -> Response {
    as_token(&state, token, |db, _| {
        let secrets = db.list().map_err(ApiError::internal)?;
        Ok(Json(json!({ "secrets": secrets })).into_response())
    })
    .await
}

async fn reveal(
    State(state): State<AppState>,
    Extension(token): Extension<Presented>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let vault = state.vault();
    as_token(&state, token, move |db, token_name| {
        let Path(name) = name.map_err(bad_path)?;
        check_stored_name(&name)?;
        match db
            .reveal(&vault, &name, token_name)
            .map_err(ApiError::internal)?
        {
            Some(secret) => Ok(Json(secret).into_response()),
            None => Err(not_found(&name)),
        }
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    Extension(token): Extension<Presented>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    as_token(&state, token, move |db, _| {
        let Path(name) = name.map_err(bad_path)?;
        check_stored_name(&name)?;
        match db.delete(&name).map_err(ApiError::internal)? {
            true => Ok(StatusCode::NO_CONTENT.into_response()),
            false => Err(not_found(&name)),
        }
    })
    .await
}

fn bad_path(_: PathRejection) -> ApiError {
    ApiError::bad_request("the secret's name in the path is not valid percent-encoded UTF-8")
}

/// A name to look up: any name a secret can have been stored under (a
/// release before the name rules, or an adopted database, may have stored
/// `a b` or `a/b`, sent as `a%20b`, `a%2Fb`), so it can still be revealed
/// and deleted. Only what no stored name can be is refused.
fn check_stored_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(format!(
            "`name` must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    Ok(())
}

fn validate(new: &NewSecret) -> Result<Option<i64>, ApiError> {
    check_name(&new.name)?;
    check_value(&new.value)?;
    check_ttl(new.ttl_seconds)
}

fn check_value(value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request("`value` must not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "`value` is {} bytes; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// A TTL from 1 second to ten years, as the `i64` both engines take.
fn check_ttl(ttl_seconds: Option<u64>) -> Result<Option<i64>, ApiError> {
    match ttl_seconds {
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
    // Clients resolve `.` and `..` as path segments, so such a secret
    // could be stored but never revealed or deleted.
    if name.chars().all(|c| c == '.') {
        return Err(ApiError::bad_request(
            "`name` must not be only dots: `.` and `..` mean folders in a URL path",
        ));
    }
    Ok(())
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no secret named `{name}` (it may have expired)"),
    )
}
