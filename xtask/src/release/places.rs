//! The places the repository's version is written, as declared in
//! `[workspace.metadata.release]`: reading them, and computing their new
//! contents in memory, each edit touching only the version's own bytes.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use regex::Regex;
use toml_edit::{DocumentMut, Item, TableLike};

use crate::{config::FileEntry, release::json_span};

/// One declared place: a file and how to find the version in it.
#[derive(Debug, Clone)]
pub struct Place {
    pub path: String,
    locator: Locator,
}

#[derive(Debug, Clone)]
enum Locator {
    Toml(Vec<TomlSegment>, String),
    Json(String),
    Regex(Regex, usize),
}

/// `key` or `key[field=value]` (one table of an array of tables).
#[derive(Debug, Clone)]
struct TomlSegment {
    key: String,
    select: Option<(String, String)>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.locator())
    }
}

impl Place {
    /// How the version is found: the key path, pointer or pattern.
    pub fn locator(&self) -> String {
        match &self.locator {
            Locator::Toml(_, path) => path.clone(),
            Locator::Json(pointer) => pointer.clone(),
            Locator::Regex(re, count) => format!("/{}/ x{count}", re.as_str()),
        }
    }

    /// Validates the declarations; all problems are reported together.
    pub fn parse_all(entries: &[FileEntry]) -> anyhow::Result<Vec<Place>> {
        let (places, problems): (Vec<_>, Vec<_>) =
            entries.iter().map(Place::parse).partition(Result::is_ok);
        if !problems.is_empty() {
            let problems: Vec<String> = problems.into_iter().filter_map(Result::err).collect();
            bail!(
                "[workspace.metadata.release] in Cargo.toml has {} invalid file entr{}:\n  {}",
                problems.len(),
                if problems.len() == 1 { "y" } else { "ies" },
                problems.join("\n  ")
            );
        }
        Ok(places.into_iter().filter_map(Result::ok).collect())
    }

    fn parse(entry: &FileEntry) -> Result<Place, String> {
        let path = entry.path.clone();
        let fail = |why: String| Err(format!("{path}: {why}"));
        if !inside_repository(&path) {
            return fail(
                "a declared file must be inside the repository: give its path relative to the repository root, \
                 without `..`"
                    .into(),
            );
        }
        if entry.count.is_some() && entry.regex.is_none() {
            return fail("`count` goes with `regex` only".into());
        }
        let locator = match (&entry.toml, &entry.json, &entry.regex) {
            (Some(toml), None, None) => Locator::Toml(
                parse_toml_path(toml).map_err(|e| format!("{path}: {e}"))?,
                toml.clone(),
            ),
            (None, Some(json), None) if json.starts_with('/') => Locator::Json(json.clone()),
            (None, Some(json), None) => {
                return fail(format!(
                    "JSON pointer `{json}` must start with `/` (RFC 6901), e.g. `/{json}`"
                ));
            }
            (None, None, Some(pattern)) => {
                let re = Regex::new(pattern)
                    .map_err(|e| format!("{path}: invalid regex `{pattern}`: {e}"))?;
                if re.captures_len() != 2 {
                    return fail(format!(
                        "regex `{pattern}` must have exactly one capture group (the version); use (?:…) for others"
                    ));
                }
                let count = entry.count.unwrap_or(1);
                if count == 0 {
                    return fail("`count` must be at least 1".into());
                }
                Locator::Regex(re, count)
            }
            _ => return fail("give exactly one of `toml`, `json` or `regex`".into()),
        };
        Ok(Place { path, locator })
    }

    /// The version(s) written here: one for TOML and JSON, `count` for a regex.
    pub fn read(&self, text: &str) -> Result<Vec<String>, String> {
        match &self.locator {
            Locator::Toml(segments, _) => {
                let mut doc = parse_toml(text)?;
                let item = toml_item_mut(&mut doc, segments)?;
                let value = item.as_str().ok_or("the value is not a string")?;
                Ok(vec![value.to_owned()])
            }
            Locator::Json(pointer) => {
                let range = json_span::string_span(text, pointer)?;
                let value: String = serde_json::from_str(&text[range.start - 1..range.end + 1])
                    .map_err(|e| format!("malformed JSON string at `{pointer}`: {e}"))?;
                Ok(vec![value])
            }
            Locator::Regex(re, count) => {
                let found: Vec<String> = re
                    .captures_iter(text)
                    .filter_map(|c| c.get(1))
                    .map(|m| m.as_str().to_owned())
                    .collect();
                if found.len() != *count {
                    return Err(format!(
                        "pattern `{}` matches {} time(s), expected exactly {count}: adjust the pattern or `count`",
                        re.as_str(),
                        found.len()
                    ));
                }
                Ok(found)
            }
        }
    }

    /// `text` with this place's version(s) replaced by `version`.
    pub fn write(&self, text: &str, version: &str) -> Result<String, String> {
        self.read(text)?;
        match &self.locator {
            Locator::Toml(segments, _) => write_toml(text, segments, version),
            Locator::Json(pointer) => {
                let range = json_span::string_span(text, pointer)?;
                Ok(splice(text, &[range], version))
            }
            Locator::Regex(re, _) => {
                let ranges: Vec<_> = re
                    .captures_iter(text)
                    .filter_map(|c| c.get(1))
                    .map(|m| m.range())
                    .collect();
                Ok(splice(text, &ranges, version))
            }
        }
    }
}

fn parse_toml_path(path: &str) -> Result<Vec<TomlSegment>, String> {
    let segment_re = Regex::new(r"^([A-Za-z0-9_-]+)(?:\[([A-Za-z0-9_-]+)=([^\]]+)\])?$")
        .map_err(|e| e.to_string())?;
    let segments: Vec<TomlSegment> = path
        .split('.')
        .map(|part| {
            let caps = segment_re.captures(part).ok_or_else(|| {
                format!("`{path}` is not a TOML key path like `package.version` or `package[name=backend].version`")
            })?;
            Ok(TomlSegment {
                key: caps[1].to_owned(),
                select: caps.get(2).zip(caps.get(3)).map(|(f, v)| (f.as_str().to_owned(), v.as_str().to_owned())),
            })
        })
        .collect::<Result<_, String>>()?;
    if segments.last().is_some_and(|s| s.select.is_some()) {
        return Err(format!(
            "`{path}` must end with a key, not a table selection"
        ));
    }
    Ok(segments)
}

fn parse_toml(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("not valid TOML: {}", e.to_string().trim()))
}

/// Walks `segments` down from the document root to the item they name.
fn toml_item_mut<'a>(
    doc: &'a mut DocumentMut,
    segments: &[TomlSegment],
) -> Result<&'a mut Item, String> {
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    let (last, parents) = segments.split_last().ok_or("empty TOML key path")?;
    for segment in parents {
        let item = table
            .get_mut(&segment.key)
            .ok_or_else(|| format!("no key `{}`", segment.key))?;
        table = match &segment.select {
            None => item
                .as_table_like_mut()
                .ok_or_else(|| format!("`{}` is not a table", segment.key))?,
            Some((field, want)) => select_table(item, &segment.key, field, want)?,
        };
    }
    table
        .get_mut(&last.key)
        .ok_or_else(|| format!("no key `{}`", last.key))
}

fn select_table<'a>(
    item: &'a mut Item,
    key: &str,
    field: &str,
    want: &str,
) -> Result<&'a mut dyn TableLike, String> {
    let tables = item
        .as_array_of_tables_mut()
        .ok_or_else(|| format!("`{key}` is not an array of tables"))?;
    let mut matching = tables
        .iter_mut()
        .filter(|t| t.get(field).and_then(Item::as_str) == Some(want));
    let first = matching
        .next()
        .ok_or_else(|| format!("no `[[{key}]]` with {field} = \"{want}\""))?;
    if matching.next().is_some() {
        return Err(format!(
            "more than one `[[{key}]]` with {field} = \"{want}\""
        ));
    }
    Ok(first)
}

/// Replaces the value, keeping its surrounding whitespace and comments, and
/// the file's line endings (toml_edit writes LF).
fn write_toml(text: &str, segments: &[TomlSegment], version: &str) -> Result<String, String> {
    let crlf = text.contains("\r\n");
    let mut doc = parse_toml(&text.replace("\r\n", "\n"))?;
    let item = toml_item_mut(&mut doc, segments)?;
    let old = item.as_value().ok_or("the value is not a string")?;
    let mut new = toml_edit::Value::from(version);
    *new.decor_mut() = old.decor().clone();
    *item = Item::Value(new);
    let out = doc.to_string();
    Ok(if crlf { out.replace('\n', "\r\n") } else { out })
}

/// `text` with every range replaced by `with` (ranges must not overlap).
fn splice(text: &str, ranges: &[std::ops::Range<usize>], with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for range in ranges {
        out.push_str(&text[at..range.start]);
        out.push_str(with);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// What one place holds now.
pub struct Reading {
    pub place: Place,
    pub values: Result<Vec<String>, String>,
}

/// Reads every place; a file that cannot be read is reported, not fatal.
pub fn read_all(root: &Path, places: &[Place]) -> Vec<Reading> {
    places
        .iter()
        .map(|place| Reading {
            place: place.clone(),
            values: read_text(root, &place.path).and_then(|text| place.read(&text)),
        })
        .collect()
}

/// Whether a declared path stays inside the repository: relative, no `..`.
fn inside_repository(path: &str) -> bool {
    let path = Path::new(path);
    !path.as_os_str().is_empty()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

fn read_text(root: &Path, path: &str) -> Result<String, String> {
    let abs = root.join(path);
    let meta = std::fs::symlink_metadata(&abs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "cannot read: the file does not exist: restore it, or remove its entry from [workspace.metadata.release]"
                .to_owned()
        }
        _ => format!("cannot read: {e}"),
    })?;
    if meta.file_type().is_symlink() {
        // A release writes the file and commits it: through a link it would
        // commit the link as a blob holding the version text.
        let target =
            std::fs::read_link(&abs).map_or_else(|_| "?".into(), |t| t.display().to_string());
        let real = abs.canonicalize().ok().and_then(|r| {
            let root = root.canonicalize().ok()?;
            r.strip_prefix(root).ok().map(|p| p.display().to_string())
        });
        return Err(match real {
            Some(real) => {
                format!("is a symbolic link (to {target}): declare the real file, {real}, instead")
            }
            None => format!(
                "is a symbolic link (to {target}) that leaves the repository: declare a file inside it"
            ),
        });
    }
    let bytes = std::fs::read(&abs).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

/// Places whose version cannot be read at all, each with why: a broken
/// declaration or file, which is not the same as places that disagree.
pub fn unreadable(readings: &[Reading]) -> Vec<String> {
    readings
        .iter()
        .filter_map(|r| r.values.as_ref().err().map(|e| format!("{}: {e}", r.place)))
        .collect()
}

/// The one version every place agrees on, or why there is none.
pub fn agreed(readings: &[Reading]) -> Result<String, String> {
    let mut agreed: Option<&str> = None;
    for reading in readings {
        let values = reading
            .values
            .as_ref()
            .map_err(|e| format!("{}: {e}", reading.place))?;
        for value in values {
            // A release tags and bumps SemVer: "banana" everywhere agrees on nothing.
            if semver::Version::parse(value).is_err() {
                return Err(format!(
                    "{} holds `{value}`, and `{value}` is not a SemVer version (MAJOR.MINOR.PATCH, e.g. 1.2.3): \
                     write the version there",
                    reading.place
                ));
            }
            match agreed {
                None => agreed = Some(value),
                Some(v) if v == value => {}
                Some(v) => {
                    return Err(format!(
                        "{} says {value}, earlier places say {v}",
                        reading.place
                    ));
                }
            }
        }
    }
    agreed
        .map(str::to_owned)
        .ok_or_else(|| "no version found".into())
}

/// One file's new contents, computed and checked in memory.
pub struct Update {
    pub path: String,
    pub abs: PathBuf,
    pub old: String,
    pub new: String,
}

/// New contents for every declared file (several places in one file become
/// one update), each re-read to prove it now says `version` everywhere and
/// changed nothing else a parser can see.
pub fn plan(root: &Path, places: &[Place], version: &str) -> anyhow::Result<Vec<Update>> {
    let mut updates: Vec<Update> = Vec::new();
    for place in places {
        let index = match updates.iter().position(|u| u.path == place.path) {
            Some(index) => index,
            None => {
                let old = read_text(root, &place.path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", place.path))?;
                updates.push(Update {
                    path: place.path.clone(),
                    abs: root.join(&place.path),
                    new: old.clone(),
                    old,
                });
                updates.len() - 1
            }
        };
        let update = &mut updates[index];
        update.new = place
            .write(&update.new, version)
            .map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
    }
    for place in places {
        let update = updates
            .iter()
            .find(|u| u.path == place.path)
            .context("planned file vanished")?;
        let values = place
            .read(&update.new)
            .map_err(|e| anyhow::anyhow!("{place}: after the edit: {e}"))?;
        if values.iter().any(|v| v != version) {
            bail!(
                "{place}: after the edit it says {values:?}, not {version}: this is a bug in the xtask"
            );
        }
    }
    for update in &updates {
        check_parses_the_same(update, places, version)?;
    }
    Ok(updates)
}

/// For JSON files: the edited document equals the original with the declared
/// pointers set to the new version, so no other value moved.
fn check_parses_the_same(update: &Update, places: &[Place], version: &str) -> anyhow::Result<()> {
    let pointers: Vec<&str> = places
        .iter()
        .filter(|p| p.path == update.path)
        .filter_map(|p| match &p.locator {
            Locator::Json(pointer) => Some(pointer.as_str()),
            _ => None,
        })
        .collect();
    if pointers.is_empty() {
        return Ok(());
    }
    let parse = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .with_context(|| format!("{}: not valid JSON", update.path))
    };
    let mut expected = parse(&update.old)?;
    for pointer in pointers {
        if let Some(slot) = expected.pointer_mut(pointer) {
            *slot = serde_json::Value::String(version.to_owned());
        }
    }
    if parse(&update.new)? != expected {
        bail!(
            "{}: the edit changed more than the version: this is a bug in the xtask",
            update.path
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(
        path: &str,
        toml: Option<&str>,
        json: Option<&str>,
        regex: Option<&str>,
        count: Option<usize>,
    ) -> Place {
        Place::parse(&FileEntry {
            path: path.into(),
            toml: toml.map(Into::into),
            json: json.map(Into::into),
            regex: regex.map(Into::into),
            count,
        })
        .unwrap()
    }

    const CARGO_TOML: &str = "[package]\nname = \"backend\" # the service\nversion   =   \"0.1.0\"   # bumped by release\nedition = \"2024\"\n\n[dependencies]\nserde = \"0.1.0\"\n";

    #[test]
    fn toml_edit_keeps_every_other_byte() {
        let p = place("Cargo.toml", Some("package.version"), None, None, None);
        assert_eq!(p.read(CARGO_TOML).unwrap(), ["0.1.0"]);
        let new = p.write(CARGO_TOML, "0.2.0").unwrap();
        assert_eq!(
            new,
            CARGO_TOML.replacen("\"0.1.0\"   #", "\"0.2.0\"   #", 1)
        );
    }

    #[test]
    fn toml_keeps_crlf() {
        let crlf = CARGO_TOML.replace('\n', "\r\n");
        let p = place("Cargo.toml", Some("package.version"), None, None, None);
        let new = p.write(&crlf, "0.2.0").unwrap();
        assert_eq!(new, crlf.replacen("\"0.1.0\"   #", "\"0.2.0\"   #", 1));
    }

    #[test]
    fn cargo_lock_selects_the_member_not_a_dependency_with_the_same_version() {
        let lock = "version = 4\n\n[[package]]\nname = \"backend\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"dep\"\nversion = \"0.1.0\"\nsource = \"registry+x\"\n";
        let p = place(
            "Cargo.lock",
            Some("package[name=backend].version"),
            None,
            None,
            None,
        );
        let new = p.write(lock, "1.0.0-rc.1").unwrap();
        assert_eq!(new, lock.replacen("0.1.0", "1.0.0-rc.1", 1));
        let missing = place(
            "Cargo.lock",
            Some("package[name=nope].version"),
            None,
            None,
            None,
        );
        assert!(
            missing
                .read(lock)
                .unwrap_err()
                .contains("no `[[package]]` with name = \"nope\"")
        );
    }

    #[test]
    fn regex_needs_its_exact_count() {
        let text = "version=\"0.1.0\"\r\nother\r\nversion=\"0.1.0\"\r\n";
        let one = place("v.txt", None, None, Some(r#"version="([^"]+)""#), None);
        assert!(
            one.read(text)
                .unwrap_err()
                .contains("matches 2 time(s), expected exactly 1")
        );
        let two = place("v.txt", None, None, Some(r#"version="([^"]+)""#), Some(2));
        assert_eq!(
            two.write(text, "0.2.0").unwrap(),
            text.replace("0.1.0", "0.2.0")
        );
        let none = place("v.txt", None, None, Some(r"nope(\d)"), None);
        assert!(none.read(text).unwrap_err().contains("matches 0 time(s)"));
    }

    #[test]
    fn bad_declarations_are_explained() {
        let entry = |toml: Option<&str>, regex: Option<&str>, count| FileEntry {
            path: "f".into(),
            toml: toml.map(Into::into),
            json: None,
            regex: regex.map(Into::into),
            count,
        };
        let cases = [
            (entry(None, None, None), "exactly one of"),
            (entry(Some("a"), Some("(x)"), None), "exactly one of"),
            (
                entry(None, Some("no group"), None),
                "exactly one capture group",
            ),
            (
                entry(None, Some("(a)(b)"), None),
                "exactly one capture group",
            ),
            (entry(Some("a"), None, Some(2)), "`count` goes with `regex`"),
            (entry(Some("a b"), None, None), "not a TOML key path"),
            (
                entry(Some("package[name=x]"), None, None),
                "must end with a key",
            ),
        ];
        for (entry, expected) in cases {
            let err = Place::parse(&entry).unwrap_err();
            assert!(err.contains(expected), "{entry:?}: {err}");
        }
    }
}
