//! A database server's error as a line safe to print or log: the server's
//! message with any quoted data cut off, and the names of what it concerns
//! (table, column, constraint, type), never its DETAIL ("Key (value)=(…)",
//! "Failing row contains (…)") — stored values are secrets. Plain std, so the
//! service and the xtask describe errors the same way.

/// The parts of a server error, as the Postgres client exposes them.
#[derive(Debug, Default)]
pub struct Parts<'a> {
    /// The SQLSTATE (`23505`): data (22) and integrity (23) errors quote data.
    pub code: &'a str,
    pub severity: &'a str,
    pub message: &'a str,
    pub table: Option<&'a str>,
    pub column: Option<&'a str>,
    pub constraint: Option<&'a str>,
    pub datatype: Option<&'a str>,
    /// The server's context line (`COPY t, line 1, column c: "…"`).
    pub place: Option<&'a str>,
}

/// `ERROR: duplicate key value violates unique constraint "x" (table secrets, constraint x)`.
pub fn describe(parts: &Parts) -> String {
    let message = without_values(parts.message);
    let message = if parts.code.starts_with("22") || parts.code.starts_with("23") {
        mask_quoted_except(
            message,
            &[parts.table, parts.column, parts.constraint, parts.datatype],
        )
    } else {
        message.to_owned()
    };
    let mut text = format!("{}: {message}", parts.severity);
    let names: Vec<String> = [
        ("table", parts.table),
        ("column", parts.column),
        ("constraint", parts.constraint),
        ("type", parts.datatype),
    ]
    .iter()
    .filter_map(|(what, name)| name.map(|n| format!("{what} {n}")))
    .collect();
    if !names.is_empty() {
        text.push_str(&format!(" ({})", names.join(", ")));
    }
    // The context's detail after its first `:` may be data (`JSON data,
    // line 1: <value>`, `COPY t, line 1, column c: "<value>"`).
    if let Some(place) = parts.place {
        let place = place.split(':').next().unwrap_or(place).trim();
        text.push_str(&format!(" [{place}]"));
    }
    text
}

/// Every `"…"` in `text` that is not one of `names` becomes `"…"`.
fn mask_quoted_except(text: &str, names: &[Option<&str>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, part) in rest.iter().enumerate() {
        out.push('"');
        let quoted = i % 2 == 0 && i + 1 < rest.len();
        if quoted && !names.iter().flatten().any(|n| n == part) {
            out.push('…');
        } else {
            out.push_str(part);
        }
    }
    out
}

/// A Postgres client error described as above (its own Display appends the
/// server's DETAIL, which quotes rows).
#[cfg(feature = "pg")]
pub fn describe_postgres(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => describe(&Parts {
            code: db.code().code(),
            severity: db.severity(),
            message: db.message(),
            table: db.table(),
            column: db.column(),
            constraint: db.constraint(),
            datatype: db.datatype(),
            place: db.where_(),
        }),
        None => e.to_string(),
    }
}

/// `text` cut before the first `: "`, where a server message starts quoting
/// data (`invalid input syntax for type integer: "…"`).
fn without_values(text: &str) -> &str {
    text.split(": \"").next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_and_values_go() {
        let line = describe(&Parts {
            code: "22P02",
            severity: "ERROR",
            message: "invalid input syntax for type integer: \"s3cret\"",
            table: Some("secrets"),
            column: Some("id"),
            place: Some("COPY secrets, line 1, column id: \"s3cret\""),
            ..Parts::default()
        });
        assert!(!line.contains("s3cret"), "{line}");
        assert!(
            line.contains("table secrets") && line.contains("column id"),
            "{line}"
        );
    }

    #[test]
    fn data_and_integrity_errors_quote_no_value() {
        let json = describe(&Parts {
            code: "22P02",
            severity: "ERROR",
            message: "invalid input syntax for type json",
            place: Some("JSON data, line 1: VALSECRET-ONE"),
            ..Parts::default()
        });
        assert!(!json.contains("VALSECRET"), "{json}");
        let unique = describe(&Parts {
            code: "23505",
            severity: "ERROR",
            message: "could not create unique index \"v_u\" because \"x\" \"s3cret\"",
            constraint: Some("v_u"),
            ..Parts::default()
        });
        assert!(
            unique.contains("\"v_u\"") && !unique.contains("s3cret"),
            "{unique}"
        );
    }
}
