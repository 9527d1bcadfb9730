//! `DATABASE_URL` in SQLAlchemy's SQLite form:
//! `sqlite:////abs/path/secrets.db` (four slashes: absolute) and
//! `sqlite:///relative/secrets.db` (three slashes: relative to the working directory).

use std::{fmt, path::PathBuf};

/// Environment variable the service and the xtask read the database location from.
pub const ENV: &str = "DATABASE_URL";

/// Used when `DATABASE_URL` is unset.
pub const DEFAULT: &str = "sqlite:///data/secrets.db";

const ACCEPTED_FORMS: &str = "accepted forms: sqlite:////absolute/path/secrets.db (four slashes) \
     or sqlite:///relative/path/secrets.db (three slashes, relative to the working directory)";

/// A parsed database location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file; relative paths are relative to the working directory.
    Sqlite(PathBuf),
}

/// Why a `DATABASE_URL` was rejected; its message names the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUrlError {
    url: String,
    reason: &'static str,
}

impl fmt::Display for DbUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {ENV} `{}`: {}; {ACCEPTED_FORMS}",
            self.url, self.reason
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
        if scheme != "sqlite" {
            return Err(fail("unsupported scheme (only sqlite is supported)"));
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

    /// Reads `DATABASE_URL`, falling back to [`DEFAULT`].
    pub fn from_env() -> Result<Self, DbUrlError> {
        match std::env::var(ENV) {
            Ok(url) if !url.is_empty() => Self::parse(&url),
            _ => Self::parse(DEFAULT),
        }
    }

    /// The SQLite file this URL points at.
    pub fn sqlite_path(&self) -> &std::path::Path {
        match self {
            DatabaseUrl::Sqlite(path) => path,
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:///{}", path.display()),
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
        assert_eq!(abs.sqlite_path(), Path::new("/srv/secrets.db"));
        let rel = DatabaseUrl::parse("sqlite:///data/secrets.db").unwrap();
        assert_eq!(rel.sqlite_path(), Path::new("data/secrets.db"));
    }

    #[test]
    fn paths_keep_spaces_and_shell_characters_literally() {
        let url = DatabaseUrl::parse("sqlite:////tmp/a b/'$(rm -rf x)'.db").unwrap();
        assert_eq!(url.sqlite_path(), Path::new("/tmp/a b/'$(rm -rf x)'.db"));
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
            "postgres://localhost/db",
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
}
