//! Bearer-token authentication in front of every `/api` route. A request
//! without a valid token learns nothing, not even whether a secret exists:
//! every refusal is the same 401 whatever the path. The middleware refuses
//! a missing or malformed header at once; a well-formed token goes to the
//! handler, which proves it on the same database connection as its work,
//! before anything else ([`with_db_as`]): one trip to the database per
//! request, where a separate lookup cost about a sixth of the throughput.
//! The token's name (never the token) goes to the access log and to the
//! request's log line.

use axum::{
    extract::{OriginalUri, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{error::ApiError, state::AppState};
use crate::{
    api_token::ApiToken,
    store::{Db, StoredToken},
};

/// The name of the token that authenticated the request, carried by the
/// response for the request's log line.
#[derive(Debug, Clone)]
pub struct TokenName(pub String);

/// A well-formed token the request presented, not yet proven.
#[derive(Clone)]
pub struct Presented(ApiToken);

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

/// A refusal decided on the database, carried by the 401 for the log line.
#[derive(Debug, Clone)]
struct Refused(Refusal, Option<String>);

/// Every API request passes here after the maintenance gate.
pub async fn require_token(mut request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), original_path(&request));
    let token = match presented(request.headers()) {
        Ok(token) => token,
        Err(refusal) => {
            log_refusal(refusal, None, &method, &path);
            return refusal_answer(refusal);
        }
    };
    request.extensions_mut().insert(Presented(token));
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if let Some(TokenName(name)) = response.extensions().get::<TokenName>() {
        tracing::info!(token = %name, %method, %path, status, "api request");
    } else if let Some(Refused(refusal, name)) = response.extensions().get::<Refused>() {
        log_refusal(*refusal, name.as_deref(), &method, &path);
    }
    response
}

/// Runs `f` on a database connection once `token` is proven valid on that
/// same connection, with the token's name. Every handler reaches the
/// database only through here. `Err` is the answer to send: the 401, or
/// the 503 or 500 of a database that is not there.
pub async fn with_db_as<T, F>(
    state: &AppState,
    Presented(token): Presented,
    f: F,
) -> Result<(T, TokenName), Response>
where
    F: FnOnce(&mut Db, &str) -> T + Send + 'static,
    T: Send + 'static,
{
    let outcome = state
        .with_db(move |db| {
            let name = authenticate(db, &token)?;
            Ok((f(db, &name), TokenName(name)))
        })
        .await;
    match outcome {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(Proof::Refused(refused))) => {
            let mut response = refusal_answer(refused.0);
            response.extensions_mut().insert(refused);
            Err(response)
        }
        Ok(Err(Proof::Failed(e))) => Err(e.into_response()),
        Err(unavailable) => Err(unavailable.into_response()),
    }
}

/// Why a token was not proven: refused, or the lookup failed.
enum Proof {
    Refused(Refused),
    Failed(ApiError),
}

/// The name of the stored token when it is `token` and active.
fn authenticate(db: &mut Db, token: &ApiToken) -> Result<String, Proof> {
    let found = db
        .token_by_hash(&token.hash())
        .map_err(|e| Proof::Failed(ApiError::internal(format!("{e:#}"))))?;
    check(token, found).map_err(|(refusal, name)| Proof::Refused(Refused(refusal, name)))
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

fn log_refusal(refusal: Refusal, name: Option<&str>, method: &axum::http::Method, path: &str) {
    let reason = format!("{refusal:?}").to_lowercase();
    match name {
        Some(token) => tracing::info!(%token, %method, %path, %reason, "api request refused (401)"),
        None => tracing::info!(%method, %path, %reason, "api request refused (401)"),
    }
}

/// The 401, with `WWW-Authenticate: Bearer` and a message that says how to get in.
fn refusal_answer(refusal: Refusal) -> Response {
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
