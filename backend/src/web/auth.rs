//! Bearer-token authentication in front of every `/api` route. It runs
//! after the maintenance gate and before any handler, so a request without
//! a valid token learns nothing, not even whether a secret exists: every
//! refusal is the same 401 whatever the path. The token's name (never the
//! token) goes to the handlers as a request extension and to the request's
//! log line.

use axum::{
    extract::{OriginalUri, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{error::ApiError, state::AppState};
use crate::{api_token::ApiToken, store::StoredToken};

/// The name of the token that authenticated the request, for the handlers
/// (`reveal` records it in the access log).
#[derive(Debug, Clone)]
pub struct TokenName(pub String);

/// Why a request is refused; logged, never told apart in the answer
/// beyond "no token" and "not a valid token".
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Missing,
    NotBearer,
    Malformed,
    Unknown,
    Revoked,
}

/// Every API request passes here after the maintenance gate.
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let (method, path) = (request.method().clone(), original_path(&request));
    let token = match presented(request.headers()) {
        Ok(token) => token,
        Err(refusal) => return refuse(refusal, None, &method, &path),
    };
    let hash = token.hash();
    let found = match state.with_db(move |db| db.token_by_hash(&hash)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return ApiError::internal(format!("{e:#}")).into_response(),
        Err(unavailable) => return unavailable.into_response(),
    };
    let name = match check(&token, found) {
        Ok(name) => name,
        Err((refusal, name)) => return refuse(refusal, name.as_deref(), &method, &path),
    };
    request.extensions_mut().insert(TokenName(name.clone()));
    let response = next.run(request).await;
    tracing::info!(token = %name, %method, %path, status = response.status().as_u16(), "api request");
    response
}

/// The token of an `Authorization: Bearer …` header, if well-formed.
fn presented(headers: &HeaderMap) -> Result<ApiToken, Refusal> {
    let value = headers.get(header::AUTHORIZATION).ok_or(Refusal::Missing)?;
    let text = value.to_str().map_err(|_| Refusal::Malformed)?;
    let (scheme, credentials) = text.split_once(' ').ok_or(Refusal::NotBearer)?;
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::NotBearer);
    }
    ApiToken::parse(credentials.trim()).ok_or(Refusal::Malformed)
}

/// The name of the stored token when it is this one and active; the hash
/// is compared again in constant time, whatever the lookup matched on.
fn check(
    token: &ApiToken,
    found: Option<StoredToken>,
) -> Result<String, (Refusal, Option<String>)> {
    match found {
        Some(stored) if !token.matches(&stored.token_hash) => Err((Refusal::Unknown, None)),
        Some(stored) if stored.revoked => Err((Refusal::Revoked, Some(stored.name))),
        Some(stored) => Ok(stored.name),
        None => Err((Refusal::Unknown, None)),
    }
}

/// The 401: logged with the reason (and a revoked token's name), answered
/// with `WWW-Authenticate: Bearer` and a message that says how to get in.
fn refuse(
    refusal: Refusal,
    name: Option<&str>,
    method: &axum::http::Method,
    path: &str,
) -> Response {
    let reason = format!("{refusal:?}").to_lowercase();
    match name {
        Some(token) => tracing::info!(%token, %method, %path, %reason, "api request refused (401)"),
        None => tracing::info!(%method, %path, %reason, "api request refused (401)"),
    }
    let message = match refusal {
        Refusal::Missing => {
            "this API needs a token: send `Authorization: Bearer <token>` \
             (an operator creates one with `backend token create NAME`)"
        }
        Refusal::NotBearer | Refusal::Malformed => {
            "the Authorization header must be `Bearer <token>` with a token as \
             `backend token create` prints it (sst_…)"
        }
        Refusal::Unknown | Refusal::Revoked => {
            "the token is not valid: it is unknown or has been revoked; ask an operator for a new one"
        }
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The request's path as the client sent it (inside `/api` the router sees
/// only the rest).
fn original_path(request: &Request) -> String {
    request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path(), |uri| uri.0.path())
        .to_owned()
}

/// Blocking, at start-up: a fresh install has no token, and every API
/// request would be refused without the operator knowing why.
pub fn announce_missing_token(state: &AppState) {
    match state.run_on_connection(|db| db.any_active_token()) {
        Ok(Ok(true)) | Err(_) => {}
        Ok(Ok(false)) => tracing::warn!(
            "no active API token: every /api request is refused (401) until an operator runs \
             `backend token create NAME` (with this DATABASE_URL) and gives the printed token \
             to the clients"
        ),
        Ok(Err(e)) => tracing::warn!("could not check for API tokens: {e:#}"),
    }
}
