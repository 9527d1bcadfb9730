//! Commands the xtask prints for an operator to paste: every path and URL in
//! them is quoted for a POSIX shell, so a space breaks nothing and `$(…)`
//! runs nothing.

/// `word` as one shell word (`'a b'`, `'$(x)'`, `plain`).
pub fn shell(word: &str) -> String {
    // A NUL cannot be in a path or URL we print; show it rather than panic.
    shlex::try_quote(word).map_or_else(|_| format!("{word:?}"), |q| q.into_owned())
}

#[cfg(test)]
mod tests {
    use super::shell;

    #[test]
    fn paths_with_spaces_quotes_and_substitutions_stay_one_word() {
        assert_eq!(shell("/srv/data/secrets.db"), "/srv/data/secrets.db");
        assert_eq!(shell("/tmp/a b/$(touch x)"), "'/tmp/a b/$(touch x)'");
        let tricky = "/tmp/it's `here`";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell(tricky)))
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), tricky);
    }
}
