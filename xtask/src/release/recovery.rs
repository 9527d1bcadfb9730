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

/// What a dead run left: temp files beside the declared files, its index.
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
    let behind: Vec<String> = git
        .status()?
        .lines()
        .filter_map(|l| l.get(3..))
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
