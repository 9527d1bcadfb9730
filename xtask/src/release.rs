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
//!     2. Rewrite every declared file, all or nothing: contents are computed
//!        and checked in memory, written through temp files and renames, and
//!        put back if any write fails.
//!     3. One commit `Release vX.Y.Z` with exactly those files, and an
//!        annotated tag; if either fails, HEAD goes back to where it was.
//!     4. Print the command that publishes both at once. Nothing is pushed.
//!
//!     --dry-run runs the preflight, prints the diff of every file and the git
//!     commands, and changes nothing; its exit status says whether a real run
//!     would pass.

use std::path::Path;

use anyhow::bail;
use semver::Version;

use crate::{
    bump, changelog,
    config::ReleaseConfig,
    flags::ReleaseArgs,
    fsutil,
    git::Git,
    lockfile::MigrationLock,
    version_files::{self, Place, Update},
};

/// Everything the release will do, settled by the preflight.
struct Plan {
    current: Version,
    next: Version,
    tag: String,
    branch: String,
    head: String,
    remote: Option<String>,
    updates: Vec<Update>,
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
    let plan = preflight(repo, &config, &places, &git, &args.version)?;
    println!(
        "release {} -> {} (tag {}) on branch {}: preflight passed",
        plan.current, plan.next, plan.tag, plan.branch
    );
    if args.dry_run {
        print_dry_run(&plan);
        return Ok(());
    }
    write_all_or_nothing(&plan.updates)?;
    commit_and_tag(&git, &plan)?;
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
    arg: &str,
) -> anyhow::Result<Plan> {
    let mut problems = Vec::new();
    let branch = check_git(git, config, &mut problems);
    let current = match version_files::agreed(&version_files::read_all(repo, places)) {
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
        // Still check the argument's form, so that error is not hidden.
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
        match version_files::plan(repo, places, &version) {
            Ok(planned) => updates = planned,
            Err(e) => problems.push(format!("{e:#}")),
        }
        match changelog_update(repo, config, &version, tag.as_deref().unwrap_or_default()) {
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
    if !git.has_identity() {
        problems.push(
            "git has no author identity: set `git config user.name` and `git config user.email`"
                .into(),
        );
    }
    branch
}

/// The changelog's new text, when the configured changelog exists.
fn changelog_update(
    repo: &Path,
    config: &ReleaseConfig,
    version: &str,
    tag: &str,
) -> Result<Option<Update>, String> {
    let abs = repo.join(&config.changelog);
    if !abs.exists() {
        return Ok(None);
    }
    let old = std::fs::read_to_string(&abs)
        .map_err(|e| format!("{}: cannot read: {e}", config.changelog))?;
    let new = changelog::release(&old, version, tag, &today_utc())
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

/// A release never ships migrations that fail `migrations check`.
fn check_migrations(repo: &Path) -> anyhow::Result<()> {
    let dir = crate::paths::migrations_dir(repo);
    if !dir.is_dir() {
        println!(
            "migrations: no migrations/ folder in {}: check skipped",
            repo.display()
        );
        return Ok(());
    }
    let report = crate::migrations::check(repo, &dir, false);
    if report.failed() {
        bail!(
            "`cargo xtask migrations check` fails, and a release never ships such migrations:\n     {}",
            report.problems().join("\n     ")
        );
    }
    Ok(())
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
    println!("would run:");
    println!("  git add -- {}", plan.paths().join(" "));
    println!("  git commit -m \"{}\"", plan.message());
    println!(
        "  git tag --annotate {} -m \"{}\"",
        plan.tag,
        plan.message()
    );
    println!("then publish with:\n  {}", push_command(plan));
    println!("dry run: nothing was changed");
}

/// Step 2: writes every file or none of them.
fn write_all_or_nothing(updates: &[Update]) -> anyhow::Result<()> {
    for (index, update) in updates.iter().enumerate() {
        if let Err(error) = fsutil::write_atomic(&update.abs, update.new.as_bytes()) {
            let unrestored: Vec<&str> = updates[..index]
                .iter()
                .filter(|u| fsutil::write_atomic(&u.abs, u.old.as_bytes()).is_err())
                .map(|u| u.path.as_str())
                .collect();
            if unrestored.is_empty() {
                return Err(error.context(
                    "release stopped; the files already written were put back, nothing was changed",
                ));
            }
            return Err(error.context(format!(
                "release stopped, and these files could not be put back: {} — run `git checkout -- {}`",
                unrestored.join(", "),
                unrestored.join(" ")
            )));
        }
    }
    Ok(())
}

/// Step 3: one commit with exactly the release files, then the tag; on any
/// failure HEAD, index and files go back to the pre-release commit.
fn commit_and_tag(git: &Git, plan: &Plan) -> anyhow::Result<()> {
    let result = git
        .add(&plan.paths())
        .and_then(|()| git.commit(&plan.message()))
        .and_then(|()| git.tag_annotated(&plan.tag, &plan.message()));
    if let Err(error) = result {
        return match git.reset_hard(&plan.head) {
            Ok(()) => Err(error.context("release stopped; the repository was put back as it was")),
            Err(undo) => Err(error.context(format!(
                "release stopped, and undoing it failed too ({undo:#}): run `git reset --hard {}`",
                plan.head
            ))),
        };
    }
    Ok(())
}

fn push_command(plan: &Plan) -> String {
    let remote = plan.remote.as_deref().unwrap_or("<remote>");
    format!("git push --atomic {remote} {} {}", plan.branch, plan.tag)
}
