//! A database server's error as a line safe to print or log: the server's
//! message with any quoted data cut off, and the names of what it concerns
//! (table, column, constraint, type), never its DETAIL ("Key (value)=(…)",
//! "Failing row contains (…)") — stored values are secrets. Plain std, so the
//! service and the xtask describe errors the same way.

/// The parts of a server error, as the Postgres client exposes them.
#[derive(Debug, Default)]
pub struct Parts<'a> {
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
    let mut text = format!("{}: {}", parts.severity, without_values(parts.message));
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
    if let Some(place) = parts.place {
        text.push_str(&format!(" [{}]", without_values(place)));
    }
    text
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
}
