//! `DATABASE_URL`: SQLite in SQLAlchemy's form,
//! `sqlite:////abs/path/secrets.db` (four slashes: absolute) and
//! `sqlite:///relative/secrets.db` (three slashes: relative to the working directory),
//! or a Postgres URL, `postgres://user:password@host:5432/dbname?options`
//! (`postgresql://` too), which the Postgres client parses in full.
//!
//! A Postgres URL's password never leaves this type by `Display`: logs, errors
//! and runbook output show `postgres://user:***@host/db`.
//!
//! This module knows URLs and nothing else; where a database's maintenance
//! flag lives by default (`DatabaseUrl::default_maintenance_flag`) is decided
//! in `maintenance`, which depends on this module and not the other way round.

use std::{fmt, path::PathBuf};

/// Environment variable the service and the xtask read the database location from.
pub const ENV: &str = "DATABASE_URL";

/// Used when `DATABASE_URL` is unset.
pub const DEFAULT: &str = "sqlite:///data/secrets.db";

const ACCEPTED_FORMS: &str = "accepted forms: sqlite:////absolute/path/secrets.db (four slashes), \
     sqlite:///relative/path/secrets.db (three slashes, relative: the service takes it from its working \
     directory, `cargo xtask` from the repository root) \
     or postgres://host:5432/dbname (with `user:password@` before the host)";

/// A parsed database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file; relative paths are relative to the working directory
    /// (the xtask joins them to the repository root first: `xtask/src/paths.rs`).
    Sqlite(PathBuf),
    /// A Postgres database.
    Postgres(PgUrl),
}

/// A Postgres URL, checked for the parts the tooling relies on.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    url: String,
    user: Option<String>,
    password: Option<String>,
    /// `host` or `host:port`, as written.
    host: String,
    database: String,
    /// Everything from `?` on, as written, without a `password=` parameter.
    query: String,
    /// Whether the password came as `?password=` rather than `user:password@`.
    password_in_query: bool,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

impl PgUrl {
    /// The full URL, password included: only for handing to a Postgres client.
    pub fn connection_string(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The password, if the URL carries one (percent-decoding is left to libpq
    /// and the client; passwords with `%` escapes are passed through as written).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The same URL without its password (for a command line, where every
    /// local user can read it; pass the password in `PGPASSWORD` instead).
    pub fn without_password(&self) -> String {
        self.render(None)
    }

    /// The same server and credentials, another database.
    pub fn with_database(&self, database: &str) -> PgUrl {
        let mut other = self.clone();
        other.database = database.to_owned();
        other.url = other.render(self.password.as_deref());
        other
    }

    fn render(&self, password: Option<&str>) -> String {
        let mut out = String::from("postgres://");
        if let Some(user) = &self.user {
            out.push_str(user);
            if let (Some(password), false) = (password, self.password_in_query) {
                out.push(':');
                out.push_str(password);
            }
            out.push('@');
        }
        out.push_str(&self.host);
        out.push('/');
        out.push_str(&self.database);
        out.push_str(&self.query);
        if let (Some(password), true) = (password, self.password_in_query) {
            out.push(if self.query.is_empty() { '?' } else { '&' });
            out.push_str("password=");
            out.push_str(password);
        }
        out
    }

    fn parse(url: &str, rest: &str) -> Result<PgUrl, &'static str> {
        let Some(rest) = rest.strip_prefix("//") else {
            return Err("a Postgres URL starts with postgres://");
        };
        let (before_query, query) = match rest.find('?') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        // The last `@` ends the credentials, whatever the password holds.
        let (credentials, location) = match before_query.rfind('@') {
            Some(at) => (Some(&before_query[..at]), &before_query[at + 1..]),
            None => (None, before_query),
        };
        let (host, path) = location.split_once('/').unwrap_or((location, ""));
        if host.is_empty() {
            return Err("the Postgres URL names no host");
        }
        if path.is_empty() || path.contains('/') {
            return Err("the Postgres URL must name one database: postgres://host/dbname");
        }
        let (user, mut password) = match credentials {
            None => (None, None),
            Some(c) => match c.split_once(':') {
                Some((user, password)) => (Some(user.to_owned()), Some(password.to_owned())),
                None => (Some(c.to_owned()), None),
            },
        };
        if password
            .as_deref()
            .is_some_and(|p| p.contains('/') || p.contains('@'))
        {
            return Err("the password holds a raw `/` or `@`: percent-encode it (%2F, %40)");
        }
        let (query, query_password) = split_password_parameter(query);
        let password_in_query = password.is_none() && query_password.is_some();
        if password.is_none() {
            password = query_password;
        }
        Ok(PgUrl {
            url: url.to_owned(),
            user,
            password,
            host: host.to_owned(),
            database: path.to_owned(),
            query,
            password_in_query,
        })
    }
}

/// `?sslmode=require&password=p` → (`?sslmode=require`, Some(`p`)).
fn split_password_parameter(query: &str) -> (String, Option<String>) {
    let Some(params) = query.strip_prefix('?') else {
        return (query.to_owned(), None);
    };
    let mut password = None;
    let kept: Vec<&str> = params
        .split('&')
        .filter(|param| match param.split_once('=') {
            Some((key, value)) if is_password_key(key) => {
                password = Some(value.to_owned());
                false
            }
            _ => true,
        })
        .collect();
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    (query, password)
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(self.password.as_ref().map(|_| "***")))
    }
}

/// Every credential in `text` masked, in every form a URL here may carry
/// one: `scheme://user:secret@host` → `scheme://user:***@host` (a password
/// holding `/` or `@` included: the credentials end at the last `@` before a
/// space), and the value of a query parameter whose key names a credential
/// (`password=`, `token=`, `X-Amz-Signature=`, see [`SECRET_KEY_PARTS`]) →
/// `token=***`. The one redaction of the service and the xtask alike.
pub fn redact(text: &str) -> String {
    redact_query_passwords(&redact_userinfo(text))
}

fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "'\"`<>".contains(c))
            .unwrap_or(tail.len());
        let url = &tail[..end];
        // The last `@` of the whole URL: a password may hold a raw `?`.
        match url.rfind('@') {
            Some(at) => {
                let credentials = &url[..at];
                match credentials.split_once(':') {
                    Some((user, _)) if !user.contains('/') => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    Some(_) => out.push_str("***"),
                    None => out.push_str(credentials),
                }
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_query_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        // A parameter starts the text, or follows `?`, `&` or white space.
        let starts =
            at == 0 || matches!(text.as_bytes()[at - 1], b'?' | b'&' | b' ' | b'\t' | b'\n');
        let key_end = text[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "%_-.".contains(c)))
            .map_or(text.len(), |n| at + n);
        if starts
            && key_end > at
            && text[key_end..].starts_with('=')
            && is_secret_key(&text[at..key_end])
        {
            let value_start = key_end + 1;
            let value_end = text[value_start..]
                .find(|c: char| c == '&' || c.is_whitespace() || "'\"`".contains(c))
                .map_or(text.len(), |n| value_start + n);
            out.push_str(&text[at..value_start]);
            out.push_str("***");
            at = value_end;
        } else {
            let next = text[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[at..at + next]);
            at += next;
        }
    }
    out
}

/// What a query key holding a credential contains, in any case and any
/// percent-encoding (libpq decodes keys): `password`, `token`,
/// `access_token`, `client_secret`, `api_key`, `auth`, `X-Amz-Signature`…
/// Other values (`sslmode`, `user`, `v`) stay readable for diagnosis.
const SECRET_KEY_PARTS: &[&str] = &[
    "pass", "pwd", "token", "secret", "key", "auth", "sig", "cred", "session", "cookie",
];

/// `password`, in any case and any percent-encoding (libpq decodes keys).
fn is_password_key(key: &str) -> bool {
    percent_decode(key).eq_ignore_ascii_case("password")
}

fn is_secret_key(key: &str) -> bool {
    let key = percent_decode(key).to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// `%21` → `!`: URLs escape what a password or a key may hold.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a `DATABASE_URL` was rejected; its message names the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUrlError {
    url: String,
    reason: &'static str,
}

impl fmt::Display for DbUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL as given may hold a password: show it without one.
        write!(
            f,
            "invalid {ENV} `{}`: {}; {ACCEPTED_FORMS}",
            redact(&self.url),
            self.reason
        )
    }
}

impl std::error::Error for DbUrlError {}

impl DatabaseUrl {
    /// Parses a URL in one of the accepted forms.
    pub fn parse(url: &str) -> Result<Self, DbUrlError> {
        let fail = |reason| DbUrlError {
            url: url.to_owned(),
            reason,
        };
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(fail("no scheme"));
        };
        if scheme == "postgres" || scheme == "postgresql" {
            return PgUrl::parse(url, rest)
                .map(DatabaseUrl::Postgres)
                .map_err(fail);
        }
        if scheme != "sqlite" {
            return Err(fail(
                "unsupported scheme (sqlite and postgres are supported)",
            ));
        }
        let Some(path) = rest.strip_prefix("///") else {
            return Err(fail(
                "a SQLite URL needs three slashes before a relative path or four before an absolute one",
            ));
        };
        if path.is_empty() || path == "/" {
            return Err(fail("the database path is empty"));
        }
        if path.ends_with('/') {
            return Err(fail("the database path names a folder, not a file"));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// Reads `DATABASE_URL`, falling back to [`DEFAULT`] when it is unset. Set
    /// but empty (`DATABASE_URL=`) is refused: it is usually a variable that
    /// lost its value, and the default would be another database.
    pub fn from_env() -> Result<Self, DbUrlError> {
        match std::env::var(ENV) {
            Ok(url) if url.trim().is_empty() => Err(DbUrlError {
                url,
                reason: "DATABASE_URL is set but empty: give a URL, or unset it to use the default \
                         (sqlite:///data/secrets.db)",
            }),
            Ok(url) => Self::parse(&url),
            Err(_) => Self::parse(DEFAULT),
        }
    }

    /// The SQLite file this URL points at, if it is one.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:///{}", path.display()),
            DatabaseUrl::Postgres(pg) => write!(f, "{pg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn four_slashes_is_absolute_three_is_relative() {
        let abs = DatabaseUrl::parse("sqlite:////srv/secrets.db").unwrap();
        assert_eq!(abs.sqlite_path(), Some(Path::new("/srv/secrets.db")));
        let rel = DatabaseUrl::parse("sqlite:///data/secrets.db").unwrap();
        assert_eq!(rel.sqlite_path(), Some(Path::new("data/secrets.db")));
    }

    #[test]
    fn paths_keep_spaces_and_shell_characters_literally() {
        let url = DatabaseUrl::parse("sqlite:////tmp/a b/'$(rm -rf x)'.db").unwrap();
        assert_eq!(
            url.sqlite_path(),
            Some(Path::new("/tmp/a b/'$(rm -rf x)'.db"))
        );
    }

    #[test]
    fn display_round_trips() {
        for url in ["sqlite:////srv/secrets.db", "sqlite:///data/secrets.db"] {
            assert_eq!(DatabaseUrl::parse(url).unwrap().to_string(), url);
        }
    }

    #[test]
    fn malformed_urls_name_the_accepted_forms() {
        for bad in [
            "",
            "secrets.db",
            "mysql://localhost/db",
            "postgres://localhost",
            "postgres://localhost/",
            "postgres:///db",
            "postgres:localhost/db",
            "sqlite://host/db",
            "sqlite:/db",
            "sqlite:///",
            "sqlite:////",
            "sqlite:///data/",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("sqlite:////absolute"), "{bad}: {err}");
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn postgres_urls_never_show_their_password() {
        let url =
            DatabaseUrl::parse("postgres://app:s3cr%21t@db.internal:5432/secrets?sslmode=require")
                .unwrap();
        let DatabaseUrl::Postgres(pg) = &url else {
            panic!("not postgres: {url:?}")
        };
        assert_eq!(pg.database(), "secrets");
        assert_eq!(pg.password(), Some("s3cr%21t"));
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db.internal:5432/secrets?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cr"));
        assert_eq!(
            pg.without_password(),
            "postgres://app@db.internal:5432/secrets?sslmode=require"
        );
        assert_eq!(
            pg.with_database("other").connection_string(),
            "postgres://app:s3cr%21t@db.internal:5432/other?sslmode=require"
        );
        assert_eq!(
            url.default_maintenance_flag(),
            Path::new("data/secrets.maintenance")
        );
        let err = DatabaseUrl::parse("postgres://app:hunter2@db")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("hunter2") && err.contains("app:***@db"),
            "{err}"
        );
    }

    #[test]
    fn a_password_in_the_query_or_holding_a_slash_is_never_shown() {
        let url = DatabaseUrl::parse("postgres://h:5432/db?user=u&password=P4ss&sslmode=disable")
            .unwrap();
        let DatabaseUrl::Postgres(pg) = &url else {
            panic!("not postgres: {url:?}")
        };
        assert_eq!(pg.password(), Some("P4ss"));
        assert_eq!(
            url.to_string(),
            "postgres://h:5432/db?user=u&sslmode=disable&password=***"
        );
        assert_eq!(
            pg.without_password(),
            "postgres://h:5432/db?user=u&sslmode=disable"
        );
        assert!(!format!("{url:?}").contains("P4ss"));
        let err = DatabaseUrl::parse("postgresql://u:Raw/Sl4sh@h:5432/db")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("Sl4sh") && err.contains("percent-encode"),
            "{err}"
        );
        let err = DatabaseUrl::parse("postgres://u:p@ss@h")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("p@ss") && !err.contains(":p@"), "{err}");
    }
}
