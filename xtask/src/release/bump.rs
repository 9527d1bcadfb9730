//! The release's target version: an explicit SemVer version, or a bump word
//! applied to the current one.

use std::cmp::Ordering;

use semver::{Prerelease, Version};

const FORM: &str = "give MAJOR.MINOR.PATCH with an optional -pre-release and +build \
                    (0.2.0, 0.2.0-beta, 1.0.0-rc.1), or one of major, minor, patch, pre";

/// The version `arg` asks for, which must be above `current` by SemVer precedence.
pub fn target(arg: &str, current: &Version) -> Result<Version, String> {
    let next = match arg {
        "major" => major(current),
        "minor" => minor(current),
        "patch" => patch(current),
        "pre" => pre(current)?,
        explicit => parse(explicit)?,
    };
    if next.cmp_precedence(current) != Ordering::Greater {
        return Err(format!(
            "{next} is not above the current version {current} by SemVer precedence: choose a higher one \
             (`patch` would give {})",
            patch(current)
        ));
    }
    Ok(next)
}

/// Parses an explicit version; a leading `v` is dropped.
pub fn parse(arg: &str) -> Result<Version, String> {
    let bare = arg.strip_prefix('v').unwrap_or(arg);
    if bare.trim().is_empty() {
        return Err(format!("the version is empty: {FORM}"));
    }
    Version::parse(bare).map_err(|e| format!("`{arg}` is not a SemVer version ({e}): {FORM}"))
}

fn release_of(v: &Version) -> Version {
    Version::new(v.major, v.minor, v.patch)
}

/// 1.2.3 → 2.0.0; 2.0.0-beta → 2.0.0 (the pre-release's own release).
fn major(v: &Version) -> Version {
    if !v.pre.is_empty() && v.minor == 0 && v.patch == 0 {
        return release_of(v);
    }
    Version::new(v.major + 1, 0, 0)
}

/// 1.2.3 → 1.3.0; 1.3.0-beta → 1.3.0.
fn minor(v: &Version) -> Version {
    if !v.pre.is_empty() && v.patch == 0 {
        return release_of(v);
    }
    Version::new(v.major, v.minor + 1, 0)
}

/// 1.2.3 → 1.2.4; 1.2.4-beta → 1.2.4.
fn patch(v: &Version) -> Version {
    if !v.pre.is_empty() {
        return release_of(v);
    }
    Version::new(v.major, v.minor, v.patch + 1)
}

/// 0.2.0-beta → 0.2.0-beta.1; 0.2.0-rc.1 → 0.2.0-rc.2.
fn pre(v: &Version) -> Result<Version, String> {
    if v.pre.is_empty() {
        return Err(format!(
            "{v} is not a pre-release, so `pre` has no counter to bump: give the first pre-release \
             explicitly, e.g. {}-beta",
            patch(v)
        ));
    }
    let mut parts: Vec<String> = v.pre.as_str().split('.').map(str::to_owned).collect();
    match parts.last().and_then(|last| last.parse::<u64>().ok()) {
        Some(n) => {
            let last = parts.len() - 1;
            parts[last] = (n + 1).to_string();
        }
        None => parts.push("1".into()),
    }
    let mut next = release_of(v);
    next.pre = Prerelease::new(&parts.join(".")).map_err(|e| e.to_string())?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn bump_words() {
        let cases = [
            ("major", "1.2.3", "2.0.0"),
            ("minor", "1.2.3", "1.3.0"),
            ("patch", "1.2.3", "1.2.4"),
            ("major", "2.0.0-beta", "2.0.0"),
            ("minor", "1.3.0-rc.1", "1.3.0"),
            ("minor", "1.3.1-rc.1", "1.4.0"),
            ("patch", "0.2.0-beta", "0.2.0"),
            ("pre", "0.2.0-beta", "0.2.0-beta.1"),
            ("pre", "0.2.0-rc.1", "0.2.0-rc.2"),
            ("pre", "0.2.0-alpha.beta", "0.2.0-alpha.beta.1"),
        ];
        for (word, from, to) in cases {
            assert_eq!(target(word, &v(from)).unwrap(), v(to), "{word} from {from}");
        }
        assert!(
            target("pre", &v("1.0.0"))
                .unwrap_err()
                .contains("1.0.1-beta")
        );
    }

    #[test]
    fn explicit_versions() {
        assert_eq!(target("v0.2.0", &v("0.1.0")).unwrap(), v("0.2.0"));
        assert_eq!(target("0.2.0", &v("0.2.0-beta")).unwrap(), v("0.2.0"));
        assert_eq!(
            target("1.0.0+build.7", &v("0.9.0")).unwrap().build.as_str(),
            "build.7"
        );
        for bad in ["0.2", "v", "1.2.3.4", "01.2.3", "", "  ", "latest"] {
            let err = target(bad, &v("0.1.0")).unwrap_err();
            assert!(err.contains("MAJOR.MINOR.PATCH"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn must_be_above_by_precedence() {
        for not_above in ["0.1.0", "0.0.9", "0.1.0+other.build", "0.1.0-beta"] {
            let err = target(not_above, &v("0.1.0")).unwrap_err();
            assert!(
                err.contains("not above the current version 0.1.0"),
                "{not_above}: {err}"
            );
        }
    }
}
