//! API tokens as the operator hands them out and as clients present them:
//! `sst_` + the base64url (no padding) of 32 bytes from the operating
//! system's random number generator. The database keeps only the SHA-256 of
//! the whole printed token, so a copy of the database (a backup, a `db copy`
//! target) lets nobody in.
//!
//! The token text never leaves this type by accident: it has no `Display`,
//! and its `Debug` shows only that a token is there.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token starts with, so a leaked one is recognisable in a scan.
pub const PREFIX: &str = "sst_";
/// 256 random bits: no guessing, and no need for a slow hash.
const RANDOM_BYTES: usize = 32;
/// Longest token name, in characters (also a CHECK in the schema).
pub const MAX_NAME_CHARS: usize = 64;

/// A bearer token: freshly generated, or well-formed as presented.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// A new token from the operating system's random number generator.
    pub fn generate() -> anyhow::Result<ApiToken> {
        let mut bytes = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            anyhow::anyhow!("the operating system's random number generator failed: {e}")
        })?;
        Ok(ApiToken(format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// `text` when it has the shape of a token (prefix, then exactly 32
    /// bytes of base64url); None otherwise, without a database lookup.
    pub fn parse(text: &str) -> Option<ApiToken> {
        let encoded = text.strip_prefix(PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        (bytes.len() == RANDOM_BYTES).then(|| ApiToken(text.to_owned()))
    }

    /// The SHA-256 of the whole printed token: what the database stores.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// Whether `stored` (a hash read from the database) is this token's,
    /// compared in constant time; a hash of another length never matches.
    pub fn matches(&self, stored: &[u8]) -> bool {
        self.hash().as_slice().ct_eq(stored).into()
    }

    /// The token itself: only for `backend token create` to print, once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A token name is 1 to 64 printable characters without whitespace, so
/// that `token list` shows it on one line and a shell passes it as one word.
pub fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    // Visible ASCII only: an invisible or direction-changing character
    // (U+200B, U+00AD, U+202E) would let two names look the same in
    // `token list`, and an operator revoke the wrong one.
    let visible = name.chars().all(|c| c.is_ascii_graphic());
    if (1..=MAX_NAME_CHARS).contains(&count) && visible {
        return Ok(());
    }
    Err(format!(
        "token name {name:?} is not valid: use 1 to {MAX_NAME_CHARS} visible ASCII characters \
         (letters, digits, punctuation; no spaces), e.g. `ci` or `alice-laptop`"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic in a test is a failed test with its cause
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let one = ApiToken::generate().unwrap();
        let two = ApiToken::generate().unwrap();
        assert!(one.expose().starts_with(PREFIX));
        assert_eq!(one.expose().len(), PREFIX.len() + 43);
        assert_ne!(one.expose(), two.expose());
        let parsed = ApiToken::parse(one.expose()).unwrap();
        assert!(parsed.matches(&one.hash()));
        assert!(!parsed.matches(&two.hash()));
        assert!(!parsed.matches(&one.hash()[..31]));
        assert_eq!(format!("{one:?}"), "ApiToken(<redacted>)");
    }

    #[test]
    fn malformed_tokens_are_refused_without_a_lookup() {
        let good = ApiToken::generate().unwrap();
        let body = &good.expose()[PREFIX.len()..];
        for bad in [
            String::new(),
            body.to_owned(),
            format!("xyz_{body}"),
            format!("{PREFIX}{}", &body[1..]),
            format!("{PREFIX}{body}A"),
            format!("{PREFIX}{body}="),
            format!("{PREFIX}{}+", &body[1..]),
        ] {
            assert!(ApiToken::parse(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_one_to_64_visible_ascii_characters() {
        for good in ["ci", "alice-laptop", "deploy@host:1", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "two words",
            "tab\there",
            "new\nline",
            "bell\u{7}",
            "ü",
            "o\u{200b}ps",
            "o\u{ad}ps",
            "\u{202e}spo",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
