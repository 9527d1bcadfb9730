//! What a release that died left behind: its temp files and index (removed
//! by the next real run), and a published release whose work tree was not
//! brought up to it (finished by the next real run, but only over files that
//! hold exactly what the release or the version before it wrote).

use std::path::Path;

use anyhow::bail;

use super::places::Place;
use crate::{config::ReleaseConfig, fsutil, git::Git};

/// The temporary index the release's tree is built in, in `.git`.
pub(super) const INDEX: &str = "xtask-release.index";

/// The release this tool started and has not finished, by tag: written just
/// before the commit point, removed once the work tree caught up.
const PENDING: &str = "xtask-release.pending";

pub(super) fn mark_pending(git: &Git, tag: &str) -> anyhow::Result<()> {
    let path = git.git_dir()?.join(PENDING);
    fsutil::write_atomic(&path, tag.as_bytes())
}

pub(super) fn clear_pending(git: &Git) {
    if let Ok(dir) = git.git_dir() {
        let _ = std::fs::remove_file(dir.join(PENDING));
    }
}

fn pending_tag(git: &Git) -> Option<String> {
    let text = std::fs::read_to_string(git.git_dir().ok()?.join(PENDING)).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// What a dead run left: temp files beside the declared files, its index,
/// and its pending mark when it died before publishing.
pub(super) fn clean_leftovers(repo: &Path, config: &ReleaseConfig, places: &[Place], git: &Git) {
    let paths = places
        .iter()
        .map(|p| p.path.as_str())
        .chain([config.changelog.as_str()]);
    for path in paths {
        let temp = fsutil::temp_path(&repo.join(path));
        if temp.is_file() && std::fs::remove_file(&temp).is_ok() {
            eprintln!(
                "recovered: removed {} left by a release that did not finish",
                temp.display()
            );
        }
    }
    if let Ok(index) = git.git_dir().map(|d| d.join(INDEX)) {
        let _ = std::fs::remove_file(index);
    }
    let published = interrupted_release(git).ok().flatten();
    if pending_tag(git).is_some_and(|tag| Some(tag) != published) {
        clear_pending(git);
    }
}

/// HEAD is a published release whose work tree a dead run left behind:
/// bring the release's files up to it — but only files that still hold
/// exactly what they held before the release. Any other content is someone's
/// work, which recovery never discards. A dry run only reports.
pub(super) fn finish_interrupted(
    repo: &Path,
    git: &Git,
    dry_run: bool,
) -> anyhow::Result<Option<String>> {
    let Some(tag) = interrupted_release(git)? else {
        return Ok(None);
    };
    // Only a release this tool left half done: a file someone put back to
    // its old contents by hand is their work, not an interruption.
    if pending_tag(git).as_deref() != Some(tag.as_str()) {
        return Ok(None);
    }
    let behind: Vec<String> = git
        .status()?
        .lines()
        .filter_map(|l| l.get(3..))
        // The dead run's own temp files (a dry run has not removed them).
        .filter(|f| !f.ends_with(".xtask-tmp"))
        .map(str::to_owned)
        .collect();
    let released = git.head_files()?;
    if behind.is_empty() || !behind.iter().all(|f| released.contains(f)) {
        return Ok(None);
    }
    let foreign: Vec<&String> = behind
        .iter()
        .filter(|f| !holds_release_or_pre_release_content(repo, git, f))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "HEAD is release {tag}, but {} differ from both the release and the version before it: that is \
             someone's work, so recovery leaves it alone. Commit or stash it, then run the release again",
            foreign
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if dry_run {
        return Ok(Some(format!(
            "dry run: a real run would first finish {tag} (an earlier run published it but stopped before \
             updating the work tree): {} file(s) would be brought up to it",
            behind.len()
        )));
    }
    git.checkout_head(&behind)?;
    git.reset_index()?;
    Ok(Some(format!(
        "finished {tag}: an earlier run published it but stopped before updating the work tree; {} file(s) now match it",
        behind.len()
    )))
}

/// The tag of HEAD when HEAD is a release commit that its tag points at.
fn interrupted_release(git: &Git) -> anyhow::Result<Option<String>> {
    if !git.is_work_tree() {
        return Ok(None);
    }
    let Some(tag) = git
        .head_subject()
        .ok()
        .and_then(|s| s.strip_prefix("Release ").map(str::to_owned))
    else {
        return Ok(None);
    };
    Ok((git.tag_commit(&tag) == Some(git.head()?)).then_some(tag))
}

/// Whether `file` holds, byte for byte, what the release gave it (HEAD) or
/// what it held before (HEAD's parent): all that an interrupted step 5 leaves.
fn holds_release_or_pre_release_content(repo: &Path, git: &Git, file: &str) -> bool {
    let Ok(now) = std::fs::read(repo.join(file)) else {
        return false;
    };
    ["HEAD", "HEAD^"]
        .iter()
        .any(|rev| git.show_file(rev, file).is_ok_and(|then| then == now))
}
