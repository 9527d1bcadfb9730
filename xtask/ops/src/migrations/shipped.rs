//! Check 4: the files of the latest release tag are unchanged.

use std::path::{Path, PathBuf};

use super::report::Outcome;
use crate::{
    git::Git,
    history::{self, MigrationFile},
    quote,
};

/// The latest release tag and the migrations as they were there.
pub(super) struct Shipped {
    pub tag: String,
    pub files: Vec<MigrationFile>,
    /// The Postgres twins as they shipped.
    twins: Vec<MigrationFile>,
}

/// Ok(None): no release tag yet. Err: git cannot say (why).
pub(super) fn latest_release(
    site: &crate::paths::Site,
    dir: &Path,
) -> Result<Option<Shipped>, String> {
    if site.is_built_in(dir) {
        return Err(format!(
            "{} have no git history beside them, so the release history cannot be read",
            site.describe(dir)
        ));
    }
    let git = Git::new(dir).map_err(|e| format!("{e:#}"))?;
    if !git.is_work_tree() {
        return Err(format!(
            "{} is not in a git work tree, so the release history cannot be read",
            dir.display()
        ));
    }
    let prefix = site
        .repo()
        .and_then(|root| crate::config::tag_prefix(root).ok())
        .unwrap_or_else(|| "v".into());
    let tags = git.tags(&prefix).map_err(|e| format!("{e:#}"))?;
    let latest = tags
        .iter()
        .filter_map(|t| {
            let bare = t.strip_prefix(&prefix)?;
            // As `release` reads a version it is given: a leading `v` dropped.
            let bare = bare.strip_prefix('v').unwrap_or(bare);
            semver::Version::parse(bare).ok().map(|v| (v, t))
        })
        .max_by(|a, b| a.0.cmp_precedence(&b.0));
    let Some((_, tag)) = latest else {
        return Ok(None);
    };
    Ok(Some(Shipped {
        tag: tag.clone(),
        files: shipped_files(&git, tag, ".")?,
        twins: shipped_files(&git, tag, &format!("{}/", history::POSTGRES_DIR))?,
    }))
}

/// The migration files of `folder` (relative to the migrations folder) at `tag`.
pub(super) fn shipped_files(
    git: &Git,
    tag: &str,
    folder: &str,
) -> Result<Vec<MigrationFile>, String> {
    let mut files = Vec::new();
    for name in git.files_at(tag, folder).map_err(|e| format!("{e:#}"))? {
        let file_name = name.rsplit('/').next().unwrap_or(&name);
        let Some((version, stem)) = history::parse_file_name(file_name) else {
            continue;
        };
        let bytes = git.show_file(tag, &name).map_err(|e| format!("{e:#}"))?;
        files.push(MigrationFile {
            version,
            name: stem.to_owned(),
            path: PathBuf::from(format!("{tag}:{name}")),
            sql: String::from_utf8(bytes).map_err(|_| format!("{tag}:{name} is not UTF-8"))?,
        });
    }
    files.sort_by_key(|f| f.version);
    Ok(files)
}

pub(super) fn immutable(
    shipped: &Result<Option<Shipped>, String>,
    files: &[MigrationFile],
    dir: &Path,
) -> Outcome {
    let shipped = match shipped {
        Err(why) => return Outcome::Skip(why.clone()),
        Ok(None) => return Outcome::Skip("no release tag yet: nothing has shipped".into()),
        Ok(Some(shipped)) => shipped,
    };
    let mut problems = Vec::new();
    let twins_dir = dir.join(history::POSTGRES_DIR);
    let twins = if twins_dir.is_dir() {
        match history::load(&twins_dir) {
            Ok(twins) => twins,
            Err(e) => return Outcome::Fail(vec![format!("{e:#}")]),
        }
    } else {
        Vec::new()
    };
    // A shipped twin may not change either; a new twin for a shipped
    // version would fork the engines' histories, so it counts as a change.
    unchanged(&shipped.twins, &twins, &shipped.tag, &mut problems);
    for twin in twins.iter().filter(|t| {
        shipped.files.iter().any(|f| f.version == t.version)
            && !shipped.twins.iter().any(|s| s.version == t.version)
    }) {
        problems.push(format!(
            "{}: a Postgres twin added for V{}, which shipped in {} without one — databases that ran the shared \
             file would refuse it; put the Postgres change in a new migration",
            twin.path.display(),
            twin.version,
            shipped.tag
        ));
    }
    unchanged(&shipped.files, files, &shipped.tag, &mut problems);
    let newest_shipped = shipped.files.last().map_or(0, |f| f.version);
    for file in files.iter().filter(|f| {
        f.version < newest_shipped && !shipped.files.iter().any(|s| s.version == f.version)
    }) {
        problems.push(format!(
            "{}: new since {} but numbered below its newest migration (V{newest_shipped}); refinery would refuse it on \
             upgraded databases — renumber it above {newest_shipped}",
            file.path.display(), shipped.tag
        ));
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{} file(s) and {} Postgres twin(s) of {} unchanged",
            shipped.files.len(),
            shipped.twins.len(),
            shipped.tag
        ))
    } else {
        Outcome::Fail(problems)
    }
}

/// Shipped files that were deleted or changed since `tag`.
pub(super) fn unchanged(
    shipped: &[MigrationFile],
    now: &[MigrationFile],
    tag: &str,
    problems: &mut Vec<String>,
) {
    for old in shipped {
        match now.iter().find(|f| f.version == old.version) {
            None => problems.push(format!(
                "{}: shipped in {tag} but deleted — restore it (`git checkout {tag} -- <file>`); undo schema in a new migration",
                old.path.display()
            )),
            Some(file) if file.sql != old.sql || file.name != old.name => problems.push(format!(
                "{}: changed since it shipped in {tag} — databases that ran it will refuse the new file; \
                 restore it (`git checkout {} -- {}`) and put the change in a new migration",
                file.path.display(), quote::shell(tag), quote::shell(&file.path.to_string_lossy())
            )),
            Some(_) => {}
        }
    }
}
