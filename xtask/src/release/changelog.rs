//! Keep a Changelog: on release, `## [Unreleased]` becomes the release's
//! section and a fresh, empty `## [Unreleased]` goes above it.

/// The changelog text after releasing `tag` (version `version`) on `date`.
/// An `## [Unreleased]` section that says nothing is refused unless
/// `allow_empty`: a release whose notes are empty is usually a forgotten entry.
pub fn release(
    text: &str,
    version: &str,
    tag: &str,
    date: &str,
    allow_empty: bool,
) -> Result<String, String> {
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.split(eol).map(str::to_owned).collect();
    let heading = lines
        .iter()
        .position(|l| l.trim().eq_ignore_ascii_case("## [unreleased]"))
        .ok_or("has no `## [Unreleased]` section: add one (Keep a Changelog form) above the latest release")?;
    if !allow_empty && section_is_empty(&lines[heading + 1..]) {
        return Err(
            "`## [Unreleased]` lists no change: write what this release changes there first, or pass \
             --allow-empty-changelog to release it with an empty section"
                .into(),
        );
    }
    let already = format!("## [{version}]");
    if lines.iter().any(|l| l.starts_with(&already)) {
        return Err(format!("already has a `{already}` section"));
    }
    lines[heading] = format!("## [Unreleased]{eol}{eol}## [{version}] - {date}");
    update_compare_links(&mut lines, version, tag);
    Ok(lines.join(eol))
}

/// Whether the lines up to the next `## ` heading (or link definitions) hold
/// nothing but blank lines and `###` sub-headings.
fn section_is_empty(after_heading: &[String]) -> bool {
    after_heading
        .iter()
        .map(|l| l.trim())
        .take_while(|l| !l.starts_with("## ") && !l.starts_with('['))
        .all(|l| l.is_empty() || l.starts_with("###"))
}

/// `[Unreleased]: <base>/compare/<prev>...HEAD` becomes a link from the new
/// tag, plus `[<version>]: <base>/compare/<prev>...<tag>` below it.
fn update_compare_links(lines: &mut Vec<String>, version: &str, tag: &str) {
    let Some(index) = lines
        .iter()
        .position(|l| l.to_ascii_lowercase().starts_with("[unreleased]:"))
    else {
        return;
    };
    let Some((base, previous)) = lines[index]
        .split_once(':')
        .map(|(_, url)| url.trim())
        .and_then(|url| url.strip_suffix("...HEAD"))
        .and_then(|url| url.rsplit_once("/compare/"))
        .map(|(base, prev)| (base.to_owned(), prev.to_owned()))
    else {
        return;
    };
    lines[index] = format!("[Unreleased]: {base}/compare/{tag}...HEAD");
    lines.insert(
        index + 1,
        format!("[{version}]: {base}/compare/{previous}...{tag}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "# Changelog\n\n## [Unreleased]\n### Added\n- a thing\n\n## [0.1.0] - 2026-01-01\n- first\n\n[Unreleased]: https://example.test/r/compare/v0.1.0...HEAD\n[0.1.0]: https://example.test/r/releases/tag/v0.1.0\n";

    #[test]
    fn unreleased_becomes_the_release_with_a_fresh_section_above() {
        let out = release(LOG, "0.2.0", "v0.2.0", "2026-11-23", false).unwrap();
        assert!(
            out.contains("## [Unreleased]\n\n## [0.2.0] - 2026-11-23\n### Added\n- a thing\n"),
            "{out}"
        );
        assert!(out.contains("[Unreleased]: https://example.test/r/compare/v0.2.0...HEAD\n[0.2.0]: https://example.test/r/compare/v0.1.0...v0.2.0\n"), "{out}");
    }

    #[test]
    fn keeps_crlf() {
        let out = release(
            &LOG.replace('\n', "\r\n"),
            "0.2.0",
            "v0.2.0",
            "2026-11-23",
            false,
        )
        .unwrap();
        assert!(!out.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn refuses_without_unreleased_or_twice() {
        assert!(
            release("# Changelog\n", "0.2.0", "v0.2.0", "d", false)
                .unwrap_err()
                .contains("## [Unreleased]")
        );
        assert!(
            release(LOG, "0.1.0", "v0.1.0", "d", false)
                .unwrap_err()
                .contains("already has")
        );
    }

    #[test]
    fn an_empty_unreleased_section_is_refused_unless_allowed() {
        let empty =
            "# Changelog\n\n## [Unreleased]\n\n### Added\n\n## [0.1.0] - 2026-01-01\n- first\n";
        let refused = release(empty, "0.2.0", "v0.2.0", "d", false).unwrap_err();
        assert!(refused.contains("--allow-empty-changelog"), "{refused}");
        assert!(release(empty, "0.2.0", "v0.2.0", "d", true).is_ok());
        let at_the_end = "# Changelog\n\n## [Unreleased]\n";
        assert!(release(at_the_end, "0.2.0", "v0.2.0", "d", false).is_err());
    }
}
