//! NAME
//!     cargo xtask release — bump the repository's version, commit and tag it
//!
//! SYNOPSIS
//!     cargo xtask release <VERSION | major | minor | patch | pre> [--dry-run]
//!
//! DESCRIPTION
//!     1. Preflight: every check runs and every failure is reported together,
//!        before anything is written (git state, version agreement, the new
//!        version, the tag, the changelog, migrations on a fresh database).
//!     2. Write the new contents of every declared file to temp files beside
//!        them (fsynced); any failure removes them: nothing changed.
//!     3. Stage the release as git objects only: blobs, a tree built in a
//!        temporary index (the pre-commit hook runs against it), the commit
//!        `Release vX.Y.Z` and an annotated tag object. Nothing moved yet.
//!     4. Publish: one `git update-ref` transaction moves the branch and
//!        creates the tag, both or neither. This is the commit point.
//!     5. Rename the temp files into place and reset the index to HEAD.
//!     6. Print the command that publishes both at once. Nothing is pushed.
//!
//!     A run that dies before step 4 leaves the repository untouched (a
//!     re-run removes its temp files); one that dies after it has released,
//!     and a re-run brings the work tree up to the release.
//!
//!     --dry-run runs the preflight, prints the diff of every file and the git
//!     commands, and changes nothing; its exit status says whether a real run
//!     would pass.

pub mod bump;
pub mod changelog;
mod json_span;
pub mod places;
mod recovery;
pub mod version;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use semver::Version;

use crate::{
    config::ReleaseConfig, failpoint, flags::ReleaseArgs, fsutil, git::Git, quote,
    run_lock::MigrationLock,
};

use places::{Place, Update};
use recovery::{INDEX, clean_leftovers, finish_interrupted};

/// Everything the release will do, settled by the preflight.
struct Plan {
    current: Version,
    next: Version,
    tag: String,
    branch: String,
    head: String,
    remote: Option<String>,
    updates: Vec<Update>,
    /// How long the pre-commit hook may run.
    hook_timeout: std::time::Duration,
}

impl Plan {
    fn message(&self) -> String {
        format!("Release {}", self.tag)
    }

    fn paths(&self) -> Vec<&str> {
        self.updates.iter().map(|u| u.path.as_str()).collect()
    }
}

pub fn run(repo: &Path, args: &ReleaseArgs) -> anyhow::Result<()> {
    let config = crate::config::release(repo)?;
    let places = Place::parse_all(&config.files)?;
    let git = Git::new(repo)?;
    // Two releases at once would race on the files, the index and the tag:
    // the second fails at once, naming the first (the lock lives in .git).
    let _lock = match git.is_work_tree() {
        true => Some(MigrationLock::acquire(
            &git.git_dir()?.join("xtask-release.lock"),
            "cargo xtask release",
        )?),
        false => None,
    };
    // A dry run changes nothing, ever: it only says what a real run would
    // recover first.
    if !args.dry_run {
        clean_leftovers(repo, &config, &places, &git);
    }
    if let Some(finished) = finish_interrupted(repo, &git, args.dry_run)? {
        println!("{finished}");
        if !args.dry_run {
            return Ok(());
        }
    }
    let plan = preflight(repo, &config, &places, &git, args)?;
    println!(
        "release {} -> {} (tag {}) on branch {}: preflight passed",
        plan.current, plan.next, plan.tag, plan.branch
    );
    if args.dry_run {
        print_dry_run(&plan);
        return Ok(());
    }
    let temps = write_temps(&plan.updates)?;
    let published = stage(&git, &plan).and_then(|staged| {
        // Written before the commit point, removed once the work tree caught
        // up: only a release this tool left half done is ever finished.
        recovery::mark_pending(&git, &plan.tag)?;
        failpoint::hit("release-before-publish")?;
        git.publish(
            &plan.branch,
            &plan.head,
            &staged.commit,
            &plan.tag,
            &staged.tag_object,
        )
    });
    if let Err(error) = published {
        remove_temps(&temps);
        recovery::clear_pending(&git);
        return Err(error.context("release stopped before it was published; nothing was changed"));
    }
    if let Err(error) =
        failpoint::hit("release-after-publish").and_then(|()| move_into_place(&git, &plan, &temps))
    {
        return Err(error.context(format!(
            "{} is released (commit and tag are in place), but the work tree is behind it: run the same \
             command again to finish, or `git checkout HEAD -- {}` and `git reset`",
            plan.tag,
            plan.paths()
                .iter()
                .map(|p| quote::shell(p))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    recovery::clear_pending(&git);
    println!(
        "committed `{}` ({} files) and tagged {}",
        plan.message(),
        plan.updates.len(),
        plan.tag
    );
    println!("publish both at once with:\n  {}", push_command(&plan));
    Ok(())
}

/// Step 1: every check, every failure reported together; nothing written.
fn preflight(
    repo: &Path,
    config: &ReleaseConfig,
    places: &[Place],
    git: &Git,
    args: &ReleaseArgs,
) -> anyhow::Result<Plan> {
    let arg = args.version.as_str();
    let mut problems = Vec::new();
    let branch = check_git(git, config, &mut problems);
    let hook_timeout = config
        .hook_timeout()
        .map_err(|e| problems.push(format!("{e:#}")))
        .unwrap_or_default();
    let readings = places::read_all(repo, places);
    let unreadable = places::unreadable(&readings);
    let current = match places::agreed(&readings) {
        _ if !unreadable.is_empty() => {
            problems.extend(unreadable);
            None
        }
        Ok(v) => bump::parse(&v)
            .map_err(|e| problems.push(format!("the current version: {e}")))
            .ok(),
        Err(why) => {
            problems.push(format!(
                "the declared files do not agree on one version ({why}): see `cargo xtask version`"
            ));
            None
        }
    };
    let next = match &current {
        Some(current) => bump::target(arg, current)
            .map_err(|e| problems.push(e))
            .ok(),
        // Still check the argument's form, so that error is not hidden (a
        // bump word needs the current version, whose problem is reported).
        None if matches!(arg, "major" | "minor" | "patch" | "pre") => None,
        None => bump::parse(arg)
            .map_err(|e| problems.push(e))
            .ok()
            .filter(|_| false),
    };
    let tag = next.as_ref().map(|n| format!("{}{n}", config.tag_prefix));
    if let Some(tag) = &tag
        && git.tag_exists(tag)
    {
        problems.push(format!("tag {tag} already exists: choose another version (or delete the tag if it was a mistake)"));
    }
    let mut updates = Vec::new();
    if let Some(next) = &next {
        let version = next.to_string();
        match places::plan(repo, places, &version) {
            Ok(planned) => updates = planned,
            Err(e) => problems.push(format!("{e:#}")),
        }
        let tag = tag.as_deref().unwrap_or_default();
        match changelog_update(repo, config, &version, tag, args.allow_empty_changelog) {
            Ok(Some(update)) => updates.push(update),
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    if let Err(e) = check_migrations(repo) {
        problems.push(format!("{e:#}"));
    }
    if !problems.is_empty() {
        bail!(
            "release preflight failed with {} problem(s); nothing was changed:\n{}",
            problems.len(),
            problems
                .iter()
                .enumerate()
                .map(|(i, p)| format!("  {}. {p}", i + 1))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let (Some(current), Some(next), Some(tag), Some(branch)) = (current, next, tag, branch) else {
        bail!("release preflight reached an impossible state: this is a bug in the xtask");
    };
    Ok(Plan {
        remote: git.push_remote(&branch),
        head: git.head()?,
        current,
        next,
        tag,
        branch,
        updates,
        hook_timeout,
    })
}

/// The git checks; returns the branch when HEAD is on an allowed one.
fn check_git(git: &Git, config: &ReleaseConfig, problems: &mut Vec<String>) -> Option<String> {
    if !git.is_work_tree() {
        problems.push("not inside a git work tree: a release is a commit and a tag, so run it in a clone of the repository".into());
        return None;
    }
    let allowed = config.branches.join(", ");
    let branch = match git.current_branch() {
        None => {
            problems.push(format!(
                "HEAD is detached: check out the branch to release from (allowed: {allowed})"
            ));
            None
        }
        Some(branch) if !config.branch_allowed(&branch) => {
            problems.push(format!(
                "branch `{branch}` may not cut releases (allowed: {allowed}; see `branches` in [workspace.metadata.release])"
            ));
            None
        }
        Some(branch) => Some(branch),
    };
    match git.status() {
        Ok(status) if !status.is_empty() => problems.push(format!(
            "the work tree has uncommitted or untracked changes — commit or stash them first \
             (`git stash --include-untracked`):\n{}",
            status
                .lines()
                .map(|l| format!("       {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("{e:#}")),
    }
    if let Some(problem) = index_lock_problem(git) {
        problems.push(problem);
    }
    if !git.has_identity() {
        problems.push(
            "git has no author identity: set `git config user.name` and `git config user.email`"
                .into(),
        );
    }
    branch
}

/// `.git/index.lock`: git's own lock, held while a git command runs and left
/// behind by one that was killed. The release's last step needs the index,
/// so a lock found only then would leave a published release half done.
fn index_lock_problem(git: &Git) -> Option<String> {
    let lock = git.git_dir().ok()?.join("index.lock");
    if !lock.exists() {
        return None;
    }
    let shown = quote::shell(&lock.to_string_lossy());
    Some(match crate::process::holder_of(&lock) {
        Some(holder) => format!(
            "{} is held by {holder}: let that git command finish, then release",
            lock.display()
        ),
        None => format!(
            "{} exists but no process holds it: a git command was killed and left it. Check that none is \
             running (`pgrep -a git`), then remove it: rm {shown}",
            lock.display()
        ),
    })
}

/// The changelog's new text, when the configured changelog exists.
fn changelog_update(
    repo: &Path,
    config: &ReleaseConfig,
    version: &str,
    tag: &str,
    allow_empty: bool,
) -> Result<Option<Update>, String> {
    let abs = repo.join(&config.changelog);
    if !abs.exists() {
        return Ok(None);
    }
    let old = std::fs::read_to_string(&abs)
        .map_err(|e| format!("{}: cannot read: {e}", config.changelog))?;
    let new = changelog::release(&old, version, tag, &today_utc(), allow_empty)
        .map_err(|e| format!("{}: {e}", config.changelog))?;
    Ok(Some(Update {
        path: config.changelog.clone(),
        abs,
        old,
        new,
    }))
}

fn today_utc() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A release never ships migrations that fail `migrations check`, which
/// the operations tool runs (its seventh check on `MIGRATIONS_POSTGRES_URL`,
/// or `DATABASE_URL` when that is a postgres:// URL, as `migrations check` reads them).
fn check_migrations(repo: &Path) -> anyhow::Result<()> {
    let dir = crate::paths::migrations_dir(repo);
    if !dir.is_dir() {
        println!(
            "migrations: no migrations/ folder in {}: check skipped",
            repo.display()
        );
        return Ok(());
    }
    let out = crate::ops::output(
        crate::ops::Program::Ops,
        repo,
        &["migrations", "check", "--json"],
    )?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "`cargo xtask migrations check` did not finish ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let problems = failed_checks(&report);
    if !out.status.success() || !problems.is_empty() {
        bail!(
            "`cargo xtask migrations check` fails, and a release never ships such migrations:\n     {}",
            problems.join("\n     ")
        );
    }
    Ok(())
}

/// `check: problem` for every problem of every failed check of the report.
fn failed_checks(report: &serde_json::Value) -> Vec<String> {
    let checks = report["checks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    checks
        .iter()
        .flat_map(|check| {
            let name = check["name"].as_str().unwrap_or("?");
            let problems = check["problems"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            problems
                .iter()
                .map(move |p| format!("{name}: {}", p.as_str().unwrap_or_default()))
        })
        .collect()
}

fn print_dry_run(plan: &Plan) {
    for update in &plan.updates {
        let diff = similar::TextDiff::from_lines(&update.old, &update.new);
        print!(
            "{}",
            diff.unified_diff()
                .context_radius(2)
                .header(&format!("a/{}", update.path), &format!("b/{}", update.path))
        );
    }
    println!("would, once every file is written to a temp file beside it:");
    println!(
        "  commit \"{}\" with {} (the pre-commit hook runs)",
        plan.message(),
        plan.paths().join(" ")
    );
    println!("  tag {} (annotated) on that commit", plan.tag);
    println!(
        "  move {} and create {} in one ref transaction, then update the work tree",
        plan.branch, plan.tag
    );
    println!("then publish with:\n  {}", push_command(plan));
    println!("dry run: nothing was changed");
}

/// Step 2: every new content durable under its temp name; all or nothing.
fn write_temps(updates: &[Update]) -> anyhow::Result<Vec<PathBuf>> {
    let mut temps = Vec::new();
    for (index, update) in updates.iter().enumerate() {
        let written = fsutil::write_temp(&update.abs, update.new.as_bytes()).and_then(|temp| {
            failpoint::hit(&format!("release-after-write-{}", index + 1)).map(|()| temp)
        });
        match written {
            Ok(temp) => temps.push(temp),
            Err(error) => {
                remove_temps(&temps);
                return Err(error.context(
                    "release stopped before anything was published; nothing was changed",
                ));
            }
        }
    }
    Ok(temps)
}

fn remove_temps(temps: &[PathBuf]) {
    for temp in temps {
        let _ = std::fs::remove_file(temp);
    }
}

struct Staged {
    commit: String,
    tag_object: String,
}

/// Step 3: the release as git objects, no ref moved.
fn stage(git: &Git, plan: &Plan) -> anyhow::Result<Staged> {
    let index = git.git_dir()?.join(INDEX);
    let staged = (|| {
        let entries = plan
            .updates
            .iter()
            .map(|u| Ok((u.path.clone(), git.hash_object(&u.path, u.new.as_bytes())?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tree = git.write_tree(&index, &plan.head, &entries)?;
        git.pre_commit_hook(&index, plan.hook_timeout)
            .context("the pre-commit hook refused the release")?;
        let commit = git.commit_tree(&tree, &plan.head, &plan.message())?;
        failpoint::hit("release-after-commit")?;
        failpoint::hit("release-before-tag")?;
        let tag_object = git.tag_object(&commit, &plan.tag, &plan.message())?;
        Ok(Staged { commit, tag_object })
    })();
    let _ = std::fs::remove_file(&index);
    staged
}

/// Step 5: the work tree catches up with the published release.
fn move_into_place(git: &Git, plan: &Plan, temps: &[PathBuf]) -> anyhow::Result<()> {
    for (index, (update, temp)) in plan.updates.iter().zip(temps).enumerate() {
        fsutil::replace_with(temp, &update.abs)?;
        failpoint::hit(&format!("release-after-rename-{}", index + 1))?;
    }
    git.reset_index()
}

fn push_command(plan: &Plan) -> String {
    let remote = plan.remote.as_deref().unwrap_or("<remote>");
    format!("git push --atomic {remote} {} {}", plan.branch, plan.tag)
}
