//! Commands the xtask prints for an operator to paste: every path and URL in
//! them is quoted for a POSIX shell, so a space breaks nothing and `$(…)`
//! runs nothing.

/// `word` as one shell word (`'a b'`, `'$(x)'`, `plain`).
pub fn shell(word: &str) -> String {
    // A NUL cannot be in a path or URL we print; show it rather than panic.
    shlex::try_quote(word).map_or_else(|_| format!("{word:?}"), |q| q.into_owned())
}

/// `word` as one shell word on one line: with a control character (a
/// newline in a folder's name) in bash's `$'…'` form, escaped, so a status
/// line stays one line and the word can still be pasted.
pub fn shell_line(word: &str) -> String {
    if !word.chars().any(char::is_control) {
        return shell(word);
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Text (a URL) as it is, unless it holds a control character (a newline
/// in a folder's name): then as [`shell_line`] shows it, so a line stays one.
pub fn one_line(text: &str) -> String {
    match text.chars().any(char::is_control) {
        true => shell_line(text),
        false => text.to_owned(),
    }
}

/// A path as [`shell_line`] shows it.
pub fn path(path: &std::path::Path) -> String {
    shell_line(&path.to_string_lossy())
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

    #[test]
    fn a_newline_is_escaped_and_bash_reads_the_word_back() {
        let odd = "/tmp/odd\ndir 'q\"\\";
        let shown = super::shell_line(odd);
        assert!(!shown.contains('\n'), "{shown}");
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {shown}"))
            .output()
            .expect("bash runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), odd);
    }
}
