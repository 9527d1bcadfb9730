//! Response headers every answer carries: a secret (or the list of names)
//! never lands in a browser's or a proxy's cache, and the UI's pages run
//! only the app's own scripts, in no frame.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};

/// Only the app's own files; no inline script or style, no plugin, no frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Adds the headers to every response; `no-store` to the API's and `/health`'s.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let dynamic = path == "/health" || path == "/api" || path.starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    if dynamic {
        set(header::CACHE_CONTROL, "no-store");
    }
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    response
}
