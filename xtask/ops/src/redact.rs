//! Credentials never reach a terminal, a log or the journal: every line the
//! xtask prints about a URL goes through [`redact`], the service's own
//! redaction (one implementation for every URL form the parser accepts).

pub use secrets_contract::dburl::redact;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_credentials_is_redacted() {
        for (text, shown) in [
            (
                "http://admin:hunter2@127.0.0.1:8000/health",
                "http://admin:***@127.0.0.1:8000/health",
            ),
            (
                "GET postgres://u:p@db/x failed",
                "GET postgres://u:***@db/x failed",
            ),
            ("http://127.0.0.1/health", "http://127.0.0.1/health"),
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=P&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            (
                "`postgres://h/db?password=P`",
                "`postgres://h/db?password=***`",
            ),
            ("postgres://u:s3cr%21t@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?pass%77ord=P",
                "postgres://h/db?pass%77ord=***",
            ),
            (
                "postgres://h/db?PASSWORD=P&x=1",
                "postgres://h/db?PASSWORD=***&x=1",
            ),
            (
                "invalid `postgres://u:ab?SEKq@h/db`",
                "invalid `postgres://u:***@h/db`",
            ),
            ("host=h password=P dbname=d", "host=h password=*** dbname=d"),
            (
                "http://h/health?token=T&v=1&access_token=A",
                "http://h/health?token=***&v=1&access_token=***",
            ),
            (
                "https://h/x?X-Amz-Signature=S&api_key=K&client_secret=C&sslmode=require",
                "https://h/x?X-Amz-Signature=***&api_key=***&client_secret=***&sslmode=require",
            ),
            (
                "GET http://h/?AUTH=a failed",
                "GET http://h/?AUTH=*** failed",
            ),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }
}
