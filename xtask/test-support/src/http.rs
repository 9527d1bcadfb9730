//! A blocking HTTP client, loopback ports and health polling.

use std::time::Duration;

/// An HTTP client that returns error statuses instead of failing on them,
/// with a 10 s limit on each request.
pub fn agent() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(10))
}

/// [`agent`] with another limit on each request.
pub fn agent_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A loopback port nothing listens on (as of now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status `url` answers a GET with; None when nothing answers in 2 s.
pub fn status_of(url: &str) -> Option<u16> {
    agent_with_timeout(Duration::from_secs(2))
        .get(url)
        .call()
        .ok()
        .map(|r| r.status().as_u16())
}

/// Waits (10 s at most) until `url` answers `wanted`.
pub fn wait_for_health(url: &str, wanted: u16) {
    if wait_until(url, |status| status == wanted).is_none() {
        panic!("{url} never answered {wanted}");
    }
}

/// Polls `url` (200 tries, 50 ms apart) until its status passes `accept`;
/// returns that status, or None when it never did.
pub(crate) fn wait_until(url: &str, accept: impl Fn(u16) -> bool) -> Option<u16> {
    for _ in 0..200 {
        match status_of(url) {
            Some(status) if accept(status) => return Some(status),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    None
}
