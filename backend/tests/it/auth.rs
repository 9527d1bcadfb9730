//! API tokens over real HTTP and the real `backend token` commands, on a
//! real SQLite file and a real Postgres database (each test on both
//! engines): every `/api` request without a valid token gets the same 401,
//! whether or not the secret exists; revoking takes effect on the next
//! request; reads name their token in the access log; no token reaches the
//! database, `token list` or the service's log.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause

use crate::common;

use backend::api_token::ApiToken;
use common::{
    Backend, Engine, PgDatabase, Server, backend_binary, backend_command, create_token,
    migrated_db, postgres_server, sqlite_url, token_command,
};
use serde_json::json;
use tempfile::TempDir;

both!(
    requests_without_a_valid_token_get_the_same_401_whether_or_not_the_secret_exists,
    a_revoked_token_is_refused_from_the_next_request_on,
    reveals_record_the_name_of_the_token,
    token_commands_refuse_bad_names_duplicates_and_unknown_tokens,
    token_list_shows_names_and_dates_never_a_hash,
    the_service_log_names_tokens_but_never_shows_one,
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

/// A well-formed token no database knows: 32 zero bytes.
fn unknown_token() -> String {
    format!("sst_{}", "A".repeat(43))
}

fn requests_without_a_valid_token_get_the_same_401_whether_or_not_the_secret_exists(
    engine: Engine,
) {
    let server = server_on!(
        engine,
        "requests_without_a_valid_token_get_the_same_401_whether_or_not_the_secret_exists"
    );
    let stored = server.post_json("/api/secrets", &json!({"name": "present", "value": "v"}));
    assert_eq!(stored.status, 201, "{}", stored.body);
    let revoked = create_token(&server.database_url, "revoked");
    assert!(
        token_command(&server.database_url, &["revoke", "revoked"])
            .status
            .success()
    );
    let valid = &server.token;
    let refused = [
        None,
        Some(format!("Basic {valid}")),
        Some(format!("Token {valid}")),
        Some("Bearer".to_owned()),
        Some("Bearer not-a-token".to_owned()),
        Some(format!("Bearer {}", &valid[..valid.len() - 1])),
        Some(format!("Bearer {}", valid.trim_start_matches("sst_"))),
        Some(format!("Bearer {}", unknown_token())),
        Some(format!("Bearer {revoked}")),
    ];
    for authorization in &refused {
        let present = server.get_with("/api/secrets/present", authorization.as_deref());
        let absent = server.get_with("/api/secrets/absent", authorization.as_deref());
        let listing = server.get_with("/api/secrets", authorization.as_deref());
        for reply in [&present, &absent, &listing] {
            assert_eq!(reply.status, 401, "{authorization:?}: {}", reply.body);
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer"),
                "{authorization:?}"
            );
            assert!(reply.json()["error"].is_string(), "{}", reply.body);
            assert!(
                !reply.body.contains(valid),
                "the token is echoed: {}",
                reply.body
            );
        }
        assert_eq!(
            present.body, absent.body,
            "{authorization:?}: the answer tells whether the secret exists"
        );
    }
    assert_eq!(
        server.get("/api/secrets/present").status,
        200,
        "a valid token is served"
    );
    assert_eq!(
        server.get_with("/health", None).status,
        200,
        "/health stays open"
    );
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secret_access_log"),
        Some(1),
        "only the authenticated read reached the secret"
    );
}

fn a_revoked_token_is_refused_from_the_next_request_on(engine: Engine) {
    let server = server_on!(
        engine,
        "a_revoked_token_is_refused_from_the_next_request_on"
    );
    let alice = format!("Bearer {}", create_token(&server.database_url, "alice"));
    assert_eq!(server.get_with("/api/secrets", Some(&alice)).status, 200);
    let out = token_command(&server.database_url, &["revoke", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked token `alice`"));
    let after = server.get_with("/api/secrets", Some(&alice));
    assert_eq!(after.status, 401, "{}", after.body);
    assert_eq!(
        server.get("/api/secrets").status,
        200,
        "other tokens still work"
    );
    let again = token_command(&server.database_url, &["revoke", "alice"]);
    assert!(
        again.status.success(),
        "revoking twice changes nothing and is no error"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already revoked"));
}

fn reveals_record_the_name_of_the_token(engine: Engine) {
    let server = server_on!(engine, "reveals_record_the_name_of_the_token");
    server.post_json("/api/secrets", &json!({"name": "audited", "value": "v"}));
    let ci = format!("Bearer {}", create_token(&server.database_url, "ci-runner"));
    assert_eq!(
        server.get_with("/api/secrets/audited", Some(&ci)).status,
        200
    );
    assert_eq!(server.get("/api/secrets/audited").status, 200);
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secret_access_log WHERE token_name = 'ci-runner'"),
        Some(1)
    );
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secret_access_log WHERE token_name = 'tests'"),
        Some(1)
    );
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM secret_access_log WHERE token_name IS NULL"),
        Some(0)
    );
}

fn token_commands_refuse_bad_names_duplicates_and_unknown_tokens(engine: Engine) {
    let server = server_on!(
        engine,
        "token_commands_refuse_bad_names_duplicates_and_unknown_tokens"
    );
    let url = &server.database_url;
    let refused = |args: &[&str], mentions: &str| {
        let out = token_command(url, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        assert!(stderr.contains(mentions), "{args:?}: {stderr}");
    };
    refused(&["create", "tests"], "already exists");
    create_token(url, "gone");
    token_command(url, &["revoke", "gone"]);
    refused(&["create", "gone"], "never reused");
    refused(&["create", "two words"], "no spaces");
    // Invisible and direction-changing characters would let two names look
    // alike in `token list`: visible ASCII only.
    refused(&["create", "o\u{200b}ps"], "visible ASCII");
    refused(&["create", "\u{202e}spo"], "visible ASCII");
    refused(&["create", ""], "1 to 64");
    refused(&["create", &"x".repeat(65)], "1 to 64");
    refused(&["revoke", "nobody"], "no token named `nobody`");
    assert_eq!(
        server.sql("SELECT COUNT(*) FROM api_tokens"),
        Some(2),
        "only `tests` and `gone` were stored"
    );
}

fn token_list_shows_names_and_dates_never_a_hash(engine: Engine) {
    let server = server_on!(engine, "token_list_shows_names_and_dates_never_a_hash");
    let url = &server.database_url;
    let revoked = create_token(url, "old-laptop");
    token_command(url, &["revoke", "old-laptop"]);
    let out = token_command(url, &["list"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("REVOKED"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("tests ") && lines[1].ends_with(" -"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("old-laptop ") && lines[2].matches('T').count() >= 2,
        "{table}"
    );
    let json_out = token_command(url, &["list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0]["name"], "tests");
    assert!(tokens[0]["revoked_at"].is_null());
    assert!(tokens[1]["revoked_at"].as_str().unwrap() >= tokens[1]["created_at"].as_str().unwrap());
    for token in [&server.token, &revoked] {
        let hash = ApiToken::parse(token).unwrap().hash();
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        for shown in [
            &table,
            &String::from_utf8_lossy(&json_out.stdout).into_owned(),
        ] {
            assert!(
                !shown.contains(token.as_str()),
                "a token is listed: {shown}"
            );
            assert!(!shown.contains(&hex), "a hash is listed: {shown}");
        }
    }
}

/// The service's own process: its log has a line per API request naming
/// the token, and neither a token nor (for the refused ones) its text.
fn the_service_log_names_tokens_but_never_shows_one(engine: Engine) {
    let dir = TempDir::new().unwrap();
    let (url, _pg) = match engine {
        Engine::Sqlite => (sqlite_url(&migrated_db(dir.path(), None)), None),
        Engine::Postgres => {
            let Some(server) = postgres_server("the_service_log_names_tokens_but_never_shows_one")
            else {
                return;
            };
            let pg = PgDatabase::create(&server);
            pg.migrate(None);
            (pg.url.clone(), Some(pg))
        }
    };
    let mut cmd = backend_command(backend_binary(), &url, "127.0.0.1:0");
    cmd.env("RUST_LOG", "debug")
        .env("SECRETS_FRONTEND_DIR", dir.path().join("no-ui"))
        .env("SECRETS_MAINTENANCE_FLAG", dir.path().join("maintenance"));
    let first_start = Backend::start(cmd);
    let log = first_start.stop();
    assert!(
        log.contains("no active API token") && log.contains("backend token create NAME"),
        "a fresh install says how to create the first token:\n{log}"
    );
    let token = create_token(&url, "ops");
    let revoked = create_token(&url, "retired");
    token_command(&url, &["revoke", "retired"]);
    let mut cmd = backend_command(backend_binary(), &url, "127.0.0.1:0");
    cmd.env("RUST_LOG", "debug")
        .env("SECRETS_FRONTEND_DIR", dir.path().join("no-ui"))
        .env("SECRETS_MAINTENANCE_FLAG", dir.path().join("maintenance"));
    let running = Backend::start(cmd);
    let agent = common::agent();
    let get = |authorization: &str| {
        agent
            .get(format!("{}/api/secrets/k", running.base))
            .header("authorization", authorization)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get(&format!("Bearer {token}")), 404);
    assert_eq!(get(&format!("Bearer {revoked}")), 401);
    assert_eq!(get(&format!("Bearer {}", unknown_token())), 401);
    assert_eq!(get(&format!("Bearer {token}x")), 401);
    let log = running.stop();
    assert!(
        !log.contains("no active API token"),
        "a token exists: no fresh-install note:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("api request") && l.contains("token=ops") && l.contains("404")),
        "the request's log line names its token:\n{log}"
    );
    assert!(
        log.contains("token=retired"),
        "a revoked token is named:\n{log}"
    );
    for secret in [&token, &revoked] {
        let body = secret.trim_start_matches("sst_");
        assert!(!log.contains(body), "a token reached the log:\n{log}");
    }
    assert!(
        !log.contains(&"A".repeat(43)),
        "a presented token reached the log:\n{log}"
    );
}

/// The SQLite file (and its WAL) holds each token's hash, never the token.
#[test]
fn the_database_file_holds_hashes_never_tokens() {
    let server = Server::start();
    let second = create_token(&server.database_url, "second");
    let mut bytes = std::fs::read(&server.db).unwrap();
    let wal = server.db.with_file_name("secrets.db-wal");
    bytes.extend(std::fs::read(&wal).unwrap_or_default());
    let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for token in [&server.token, &second] {
        let hash = ApiToken::parse(token).unwrap().hash();
        assert!(
            found(&hash),
            "the hash is stored (so the search reads the right bytes)"
        );
        assert!(
            !found(token.as_bytes()),
            "a token is stored in the database file"
        );
        let body = token.trim_start_matches("sst_");
        assert!(
            !found(body.as_bytes()),
            "a token's random part is in the database file"
        );
    }
}

/// Behind the schema that has `api_tokens`, the commands say what to run.
#[test]
fn token_commands_refuse_a_database_behind_their_build() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), Some(4));
    let out = token_command(&sqlite_url(&db), &["create", "early"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("cargo xtask migrate"), "{stderr}");
}

/// A clock that stepped back since a token was created (its `created_at`
/// is in the future) does not stop an operator from revoking it: the
/// revocation is dated no earlier than the creation, and it takes effect.
#[test]
fn a_token_created_under_a_clock_ahead_can_still_be_revoked() {
    let dir = TempDir::new().unwrap();
    let db = migrated_db(dir.path(), None);
    let url = sqlite_url(&db);
    create_token(&url, "skewed");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE api_tokens SET created_at = '2099-01-01T00:00:00Z' WHERE name = 'skewed'",
        )
        .unwrap();
    let out = token_command(&url, &["revoke", "skewed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT revoked_at FROM api_tokens WHERE name = 'skewed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(revoked, "2099-01-01T00:00:00Z");
}
