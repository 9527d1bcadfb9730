//! Credentials never reach a terminal, a log or the journal: every line the
//! xtask prints about a URL goes through [`redact`].

/// `scheme://user:secret@host/…` → `scheme://***@host/…`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(credentials) => {
                out.push_str("***");
                out.push_str(&tail[credentials..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("http://admin:hunter2@127.0.0.1:8000/health"),
            "http://***@127.0.0.1:8000/health"
        );
        assert_eq!(
            redact("GET postgres://u:p@db/x failed"),
            "GET postgres://***@db/x failed"
        );
        assert_eq!(redact("http://127.0.0.1/health"), "http://127.0.0.1/health");
    }
}
