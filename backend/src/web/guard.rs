//! The gate in front of the secrets API: every `/api` request asks the state
//! whether the database can be used right now, and gets a 503 with
//! `Retry-After` instead of reaching a handler when it cannot.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    error::ApiError,
    state::{AppState, Availability, maintenance_error},
};
use crate::maintenance::RETRY_AFTER_SECONDS;

/// Every API request passes here first.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.availability_async().await {
        Availability::Serving => next.run(request).await,
        Availability::Maintenance => maintenance_error().into_response(),
        Availability::Unavailable(reason) => {
            tracing::error!(%reason, "database unavailable");
            ApiError::unavailable(
                "the database is unavailable; see the service log",
                RETRY_AFTER_SECONDS,
            )
            .into_response()
        }
    }
}
