//! Gaps in the migration versions, as ranges: a jump from V4 to V20261129
//! is one gap `5-20261128`, found and said in O(files) whatever its width.
//! A gap is usually a file lost in a merge or a rename: refinery would run
//! the rest without a word, so it is an error unless `allow-gaps` lists it.

use std::fmt;

use anyhow::bail;
use serde::Deserialize;

use super::files::MigrationFile;

/// Versions `first..=last` (one version when they are equal), 1 ≤ first ≤ last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "RawRange")]
pub struct VersionRange {
    pub first: i32,
    pub last: i32,
}

/// An `allow-gaps` entry as TOML holds it: `4` or `"5-20261128"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawRange {
    Version(i64),
    Text(String),
}

impl TryFrom<RawRange> for VersionRange {
    type Error = String;
    fn try_from(raw: RawRange) -> Result<Self, String> {
        match raw {
            RawRange::Version(n) => VersionRange::parse(&n.to_string()),
            RawRange::Text(text) => VersionRange::parse(&text),
        }
        .map_err(|e| format!("allow-gaps: {e}"))
    }
}

impl VersionRange {
    /// `7` or `5-20261128`; versions run from 1 to 2147483647 (refinery's i32).
    pub fn parse(text: &str) -> Result<VersionRange, String> {
        let text = text.trim();
        let (first, last) = text.split_once('-').unwrap_or((text, text));
        let version = |v: &str| {
            v.trim()
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!(
                        "`{text}` is not a migration version (1 to {}) or a range of them like 5-9",
                        i32::MAX
                    )
                })
        };
        let range = VersionRange {
            first: version(first)?,
            last: version(last)?,
        };
        if range.first > range.last {
            return Err(format!(
                "`{text}` runs backwards: write the lower version first"
            ));
        }
        Ok(range)
    }

    fn contains(&self, version: i32) -> bool {
        (self.first..=self.last).contains(&version)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first == self.last {
            true => write!(f, "{}", self.first),
            false => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

/// `missing` less every range of `allowed`: what is left, in order.
fn uncovered(missing: VersionRange, allowed: &[VersionRange]) -> Vec<VersionRange> {
    let mut sorted = allowed.to_vec();
    sorted.sort();
    let mut left = Vec::new();
    let mut next = missing.first;
    for range in sorted {
        if range.last < next || range.first > missing.last {
            continue;
        }
        if range.first > next {
            left.push(VersionRange {
                first: next,
                last: range.first - 1,
            });
        }
        if range.last >= missing.last {
            return left;
        }
        next = range.last + 1;
    }
    left.push(VersionRange {
        first: next,
        last: missing.last,
    });
    left
}

/// Versions missing between 1 and the newest file, as ranges, each named
/// with the file that follows it, unless `allowed` covers them; a listed
/// range that covers a file is reported too (a stale list would hide a
/// future loss).
pub fn gap_problems(files: &[MigrationFile], allowed: &[VersionRange]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut previous = 0;
    for file in files {
        if file.version > previous + 1 {
            let missing = VersionRange {
                first: previous + 1,
                last: file.version - 1,
            };
            let left = uncovered(missing, allowed);
            if !left.is_empty() {
                problems.push(gap_problem(file, previous, &left));
            }
        }
        previous = file.version;
    }
    for range in allowed {
        if let Some(file) = files.iter().find(|f| range.contains(f.version)) {
            let what = match range.first == range.last {
                true => "version",
                false => "versions",
            };
            problems.push(format!(
                "allow-gaps lists {what} {range}, but {} exists: take {} out of allow-gaps (or MIGRATE_ALLOW_GAPS)",
                file.path.display(),
                file.version
            ));
        }
    }
    problems
}

fn gap_problem(file: &MigrationFile, previous: i32, left: &[VersionRange]) -> String {
    let shown = |r: &VersionRange| match r.first == r.last {
        true => r.first.to_string(),
        false => format!("{}–{}", r.first, r.last),
    };
    let said = left.iter().map(shown).collect::<Vec<_>>().join(", ");
    let single = left.len() == 1 && left[0].first == left[0].last;
    let (what, verb) = if single {
        ("version", "is")
    } else {
        ("versions", "are")
    };
    // Single versions as numbers, ranges as strings: the TOML allow-gaps takes both.
    let toml = left
        .iter()
        .map(|r| match r.first == r.last {
            true => r.to_string(),
            false => format!("\"{r}\""),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let env = left.iter().map(ToString::to_string).collect::<Vec<_>>();
    format!(
        "{}: follows V{previous} — {what} {said} {verb} missing. Restore the lost file (git log --diff-filter=D \
         -- migrations/), or renumber this one if it has not shipped; if the gap is deliberate, list it: \
         allow-gaps = [{toml}] in [workspace.metadata.migrate] (or MIGRATE_ALLOW_GAPS={})",
        file.path.display(),
        env.join(",")
    )
}

/// [`gap_problems`] as an error.
pub fn refuse_gaps(files: &[MigrationFile], allowed: &[VersionRange]) -> anyhow::Result<()> {
    let problems = gap_problems(files, allowed);
    if !problems.is_empty() {
        bail!(
            "a gap in the migration versions:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: i32, last: i32) -> VersionRange {
        VersionRange { first, last }
    }

    #[test]
    fn ranges_parse_and_refuse_what_is_not_a_version() {
        assert_eq!(VersionRange::parse("7"), Ok(r(7, 7)));
        assert_eq!(VersionRange::parse(" 5-20261128 "), Ok(r(5, 20261128)));
        for bad in ["0", "-1", "3-", "9-5", "x", "2147483648", ""] {
            assert!(VersionRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_allowed_ranges_leave_uncovered() {
        assert_eq!(uncovered(r(5, 20), &[]), [r(5, 20)]);
        assert_eq!(uncovered(r(5, 20), &[r(1, 30)]), []);
        assert_eq!(
            uncovered(r(5, 20), &[r(8, 9), r(6, 6)]),
            [r(5, 5), r(7, 7), r(10, 20)]
        );
        assert_eq!(uncovered(r(5, 20), &[r(15, 40)]), [r(5, 14)]);
        assert_eq!(uncovered(r(1, i32::MAX - 1), &[r(1, i32::MAX)]), []);
    }
}
