//! The secrets API over real HTTP, against a real SQLite file and a real
//! Postgres database (each test runs on both engines).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::common;

use common::{Engine, Server};
use serde_json::json;

both!(
    names_stored_before_the_rules_are_revealed_and_deleted,
    health_reports_status_and_versions,
    store_list_reveal_delete_round_trip,
    duplicate_names_conflict_and_keep_the_first_value,
    expiry_is_stored_and_expired_secrets_vanish,
    reveals_are_logged_and_deletes_cascade_to_the_log,
    bad_input_is_refused_with_a_message_and_no_echo,
    only_the_name_constraint_means_already_exists,
    names_of_only_dots_are_refused,
    api_answers_are_never_cached_and_pages_carry_security_headers,
    expired_secrets_are_deleted_by_the_sweep,
);

/// A server on `engine`, or return: the test was skipped (and said so).
macro_rules! server_on {
    ($engine:expr, $test:expr) => {
        match Server::start_on($engine, $test) {
            Some(server) => server,
            None => return,
        }
    };
}

fn health_reports_status_and_versions(engine: Engine) {
    let server = server_on!(engine, "health_reports_status_and_versions");
    let reply = server.get("/health");
    assert_eq!(reply.status, 200);
    let health = reply.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let expected = backend::schema::expected_version();
    assert!(expected >= 4, "the repository has at least four migrations");
    assert_eq!(health["schema_version"], expected);
    assert_eq!(health["expected_schema_version"], expected);
}

fn store_list_reveal_delete_round_trip(engine: Engine) {
    let server = server_on!(engine, "store_list_reveal_delete_round_trip");
    let created = server.post_json(
        "/api/secrets",
        &json!({"name": "db.password", "value": "hunter2"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["name"], "db.password");
    assert!(created.json()["expires_at"].is_null());
    assert!(
        !created.body.contains("hunter2"),
        "creating must not echo the value"
    );

    let listed = server.get("/api/secrets");
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["secrets"][0]["name"], "db.password");
    assert!(
        !listed.body.contains("hunter2"),
        "listing must never show values: {}",
        listed.body
    );

    let revealed = server.get("/api/secrets/db.password");
    assert_eq!(revealed.status, 200);
    assert_eq!(revealed.json()["value"], "hunter2");

    assert_eq!(server.delete("/api/secrets/db.password").status, 204);
    assert_eq!(server.get("/api/secrets/db.password").status, 404);
    assert_eq!(server.delete("/api/secrets/db.password").status, 404);
    assert_eq!(server.get("/api/secrets").json()["secrets"], json!([]));
}

fn duplicate_names_conflict_and_keep_the_first_value(engine: Engine) {
    let server = server_on!(engine, "duplicate_names_conflict_and_keep_the_first_value");
    assert_eq!(
        server
            .post_json("/api/secrets", &json!({"name": "k", "value": "one"}))
            .status,
        201
    );
    let again = server.post_json("/api/secrets", &json!({"name": "k", "value": "two"}));
    assert_eq!(again.status, 409);
    assert!(
        again.json()["error"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert!(!again.body.contains("two"));
    assert_eq!(server.get("/api/secrets/k").json()["value"], "one");
}

fn expiry_is_stored_and_expired_secrets_vanish(engine: Engine) {
    let server = server_on!(engine, "expiry_is_stored_and_expired_secrets_vanish");
    let created = server.post_json(
        "/api/secrets",
        &json!({"name": "temp", "value": "v", "ttl_seconds": 3600}),
    );
    assert_eq!(created.status, 201);
    let meta = created.json();
    assert!(meta["expires_at"].as_str().unwrap() > meta["created_at"].as_str().unwrap());

    // Age the secret in the database itself rather than sleeping.
    server.sql(
        "UPDATE secrets SET created_at = '2000-01-01T00:00:00Z', expires_at = '2000-01-01T00:00:01Z' WHERE name = 'temp'",
    );
    assert_eq!(server.get("/api/secrets/temp").status, 404);
    assert_eq!(server.get("/api/secrets").json()["secrets"], json!([]));
    let reused = server.post_json("/api/secrets", &json!({"name": "temp", "value": "new"}));
    assert_eq!(
        reused.status, 201,
        "an expired name can be reused: {}",
        reused.body
    );
    assert_eq!(server.get("/api/secrets/temp").json()["value"], "new");
}

fn reveals_are_logged_and_deletes_cascade_to_the_log(engine: Engine) {
    let server = server_on!(engine, "reveals_are_logged_and_deletes_cascade_to_the_log");
    server.post_json("/api/secrets", &json!({"name": "audited", "value": "v"}));
    server.get("/api/secrets/audited");
    server.get("/api/secrets/audited");
    let count = || server.sql("SELECT COUNT(*) FROM secret_access_log");
    assert_eq!(count(), Some(2));
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secret_access_log WHERE token_name = 'tests'"),
        Some(2),
        "each read names the token that made it"
    );
    server.delete("/api/secrets/audited");
    assert_eq!(count(), Some(0));
}

fn bad_input_is_refused_with_a_message_and_no_echo(engine: Engine) {
    let server = server_on!(engine, "bad_input_is_refused_with_a_message_and_no_echo");
    let long_name = "n".repeat(129);
    let cases = [
        (json!({"name": "", "value": "v"}), 400, "`name`"),
        (json!({"name": long_name, "value": "v"}), 400, "`name`"),
        (json!({"name": "has space", "value": "v"}), 400, "`name`"),
        (json!({"name": "k", "value": ""}), 400, "`value`"),
        (
            json!({"name": "k", "value": "x".repeat(64 * 1024 + 1)}),
            400,
            "limit",
        ),
        (
            json!({"name": "k", "value": "v", "ttl_seconds": 0}),
            400,
            "ttl_seconds",
        ),
        (
            json!({"name": "k", "value": "v", "ttl_seconds": 999_999_999_999u64}),
            400,
            "ttl_seconds",
        ),
        (
            json!({"name": "k", "value": "v", "ttl_seconds": -5}),
            400,
            "JSON",
        ),
        (json!({"name": "k", "value": 12345}), 400, "JSON"),
        (json!({"name": "k"}), 400, "JSON"),
        (
            json!({"name": "k", "value": "v", "extra": "field"}),
            400,
            "JSON",
        ),
    ];
    for (body, status, mentions) in cases {
        let reply = server.post_json("/api/secrets", &body);
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let secret = "s3cr3t-do-not-echo";
    let malformed = server.post_raw(
        "/api/secrets",
        "application/json",
        format!("{{\"name\": \"k\", \"value\": \"{secret}\"").as_bytes(),
    );
    assert_eq!(malformed.status, 400);
    assert!(!malformed.body.contains(secret), "{}", malformed.body);
    let typed = server.post_raw(
        "/api/secrets",
        "application/json",
        format!("{{\"name\": \"k\", \"value\": \"v\", \"ttl_seconds\": \"{secret}\"}}").as_bytes(),
    );
    assert_eq!(typed.status, 400);
    assert!(!typed.body.contains(secret), "{}", typed.body);
    let no_type = server.post_raw("/api/secrets", "text/plain", b"{}");
    assert_eq!(no_type.status, 415);
    let huge = format!(
        "POST /api/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        300 * 1024
    );
    assert_eq!(server.status_of_head(&huge), 413);
    // A name the rules would refuse is still looked up (an older release
    // may have stored it): not found, and not echoed as anything else.
    assert_eq!(server.get("/api/secrets/bad%20name").status, 404);
    assert_eq!(
        server
            .post_json("/api/secrets", &json!({"name": "bad name", "value": "v"}))
            .status,
        400
    );
    assert_eq!(server.get("/api/nope").status, 404);
    assert_eq!(
        server.get("/api/secrets").json()["secrets"],
        json!([]),
        "nothing was stored"
    );
}

/// 409 "already exists" only when the name's own constraint is violated;
/// any other unique violation (here an index an operator added on the
/// sealed values' lengths: equal values seal to equal lengths) is a 500 with
/// a log line, never a false 409, and no value in the body.
fn only_the_name_constraint_means_already_exists(engine: Engine) {
    let server = server_on!(engine, "only_the_name_constraint_means_already_exists");
    server.sql("CREATE UNIQUE INDEX secrets_sealed_length ON secrets (length(sealed_value))");
    let first = server.post_json(
        "/api/secrets",
        &json!({"name": "k1", "value": "same-value"}),
    );
    assert_eq!(first.status, 201);
    let second = server.post_json(
        "/api/secrets",
        &json!({"name": "k2", "value": "same-value"}),
    );
    assert_eq!(second.status, 500, "{}", second.body);
    assert!(!second.body.contains("already exists"), "{}", second.body);
    assert!(!second.body.contains("same-value"), "{}", second.body);
    let taken = server.post_json("/api/secrets", &json!({"name": "k1", "value": "other"}));
    assert_eq!(taken.status, 409, "{}", taken.body);
}

/// A secret stored under a name today's rules refuse (an older release, or
/// an adopted database, had looser rules) is still revealed and deleted,
/// its name percent-encoded in the path.
fn names_stored_before_the_rules_are_revealed_and_deleted(engine: Engine) {
    let server = server_on!(
        engine,
        "names_stored_before_the_rules_are_revealed_and_deleted"
    );
    let keys = backend::seal::keyfile::read(&common::test_key_file()).unwrap();
    for (name, path) in [
        ("a b", "a%20b"),
        ("a/b", "a%2Fb"),
        ("名前", "%E5%90%8D%E5%89%8D"),
    ] {
        let sealed = keys.seal(name, "legacy-value").unwrap();
        let hex: String = sealed.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let blob = match server.pg {
            Some(_) => format!("'\\x{hex}'::bytea"),
            None => format!("X'{hex}'"),
        };
        server.sql(&format!(
            "INSERT INTO secrets (name, sealed_value, key_id, created_at) \
             VALUES ('{name}', {blob}, '{}', '2026-01-01T00:00:00Z')",
            sealed.key_id
        ));
        let revealed = server.get(&format!("/api/secrets/{path}"));
        assert_eq!(revealed.status, 200, "{name}: {}", revealed.body);
        assert_eq!(revealed.json()["value"], "legacy-value");
        assert_eq!(
            server.delete(&format!("/api/secrets/{path}")).status,
            204,
            "{name}"
        );
        assert_eq!(
            server.get(&format!("/api/secrets/{path}")).status,
            404,
            "{name}"
        );
    }
}

/// `.` and `..` are path segments to every HTTP client: a secret named so
/// could be stored but never revealed or deleted through a normal client.
fn names_of_only_dots_are_refused(engine: Engine) {
    let server = server_on!(engine, "names_of_only_dots_are_refused");
    for name in [".", "..", "..."] {
        let reply = server.post_json("/api/secrets", &json!({"name": name, "value": "v"}));
        assert_eq!(reply.status, 400, "{name}: {}", reply.body);
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains("dots"), "{name}: {message}");
    }
    assert_eq!(server.get("/api/secrets").json()["secrets"], json!([]));
    for name in [".env", "a..b", "v1.2"] {
        let reply = server.post_json("/api/secrets", &json!({"name": name, "value": "v"}));
        assert_eq!(reply.status, 201, "{name}: {}", reply.body);
        assert_eq!(server.get(&format!("/api/secrets/{name}")).status, 200);
    }
}

/// A browser or proxy must never keep a secret (or the list of names) in
/// its cache; the UI's pages run only the app's own scripts.
fn api_answers_are_never_cached_and_pages_carry_security_headers(engine: Engine) {
    let server = server_on!(
        engine,
        "api_answers_are_never_cached_and_pages_carry_security_headers"
    );
    let answers = [
        server.post_json("/api/secrets", &json!({"name": "k", "value": "v"})),
        server.get("/api/secrets"),
        server.get("/api/secrets/k"),
        server.get("/api/secrets/missing"),
        server.post_json("/api/secrets", &json!({"name": "", "value": "v"})),
        server.get("/api/nope"),
        server.delete("/api/secrets/k"),
        server.get_with("/api/secrets", None),
        server.get("/health"),
    ];
    for reply in &answers {
        assert_eq!(
            reply.header("cache-control"),
            Some("no-store"),
            "status {}: {:?}",
            reply.status,
            reply.headers
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
    let page = server.get("/");
    let policy = page
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on the UI: {:?}", page.headers));
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
}

/// Expired secrets are not only hidden: the sweep deletes them (and, by
/// cascade, their access log), and leaves live ones alone.
fn expired_secrets_are_deleted_by_the_sweep(engine: Engine) {
    let server = server_on!(engine, "expired_secrets_are_deleted_by_the_sweep");
    for name in ["old", "live"] {
        let created = server.post_json(
            "/api/secrets",
            &json!({"name": name, "value": "v", "ttl_seconds": 3600}),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(server.get(&format!("/api/secrets/{name}")).status, 200);
    }
    server.sql(
        "UPDATE secrets SET created_at = '2000-01-01T00:00:00Z', expires_at = '2000-01-01T00:00:01Z' WHERE name = 'old'",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.sql("SELECT COUNT(*) FROM secrets") != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired secret is still in the database after 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secrets WHERE name = 'live'"),
        Some(1)
    );
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secret_access_log"),
        Some(1),
        "the expired secret's log went with it; the live one's stays"
    );
}
