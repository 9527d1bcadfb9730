//! The `git` command line through xshell: arguments are passed as arguments,
//! never through a shell, so paths and messages are never interpreted.

use std::path::Path;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

pub struct Git {
    sh: Shell,
}

impl Git {
    pub fn new(root: &Path) -> anyhow::Result<Git> {
        let sh = Shell::new().context("starting a shell for git")?;
        sh.change_dir(root);
        Ok(Git { sh })
    }

    /// Runs git; on failure the error carries the command and git's own message.
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let stdout = self.run_bytes(args)?;
        Ok(String::from_utf8_lossy(&stdout).trim_end().to_owned())
    }

    /// Runs git and returns its raw standard output (file contents too).
    fn run_bytes(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let output = cmd!(self.sh, "git {args...}")
            .quiet()
            .ignore_status()
            .output()
            .context("running git: is it installed and on PATH?")?;
        if !output.status.success() {
            bail!(
                "`git {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }

    /// Runs git and reports only whether it succeeded.
    fn succeeds(&self, args: &[&str]) -> bool {
        cmd!(self.sh, "git {args...}")
            .quiet()
            .ignore_status()
            .ignore_stdout()
            .ignore_stderr()
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn is_work_tree(&self) -> bool {
        self.run(&["rev-parse", "--is-inside-work-tree"])
            .is_ok_and(|s| s == "true")
    }

    /// The checked-out branch; None when HEAD is detached.
    pub fn current_branch(&self) -> Option<String> {
        self.run(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()
    }

    /// `git status --porcelain`: uncommitted and untracked (not ignored) paths.
    pub fn status(&self) -> anyhow::Result<String> {
        self.run(&["status", "--porcelain", "--untracked-files=all"])
    }

    pub fn tag_exists(&self, tag: &str) -> bool {
        self.succeeds(&[
            "rev-parse",
            "--quiet",
            "--verify",
            &format!("refs/tags/{tag}"),
        ])
    }

    /// Whether commits can be made: git needs a name and an e-mail.
    pub fn has_identity(&self) -> bool {
        self.succeeds(&["var", "GIT_COMMITTER_IDENT"])
    }

    /// The repository's `.git` folder (absolute).
    pub fn git_dir(&self) -> anyhow::Result<std::path::PathBuf> {
        Ok(std::path::PathBuf::from(
            self.run(&["rev-parse", "--absolute-git-dir"])?,
        ))
    }

    pub fn head(&self) -> anyhow::Result<String> {
        self.run(&["rev-parse", "HEAD"])
    }

    /// The remote the branch tracks, else the only remote, else None.
    pub fn push_remote(&self, branch: &str) -> Option<String> {
        if let Ok(remote) = self.run(&["config", &format!("branch.{branch}.remote")]) {
            return Some(remote);
        }
        let remotes = self.run(&["remote"]).ok()?;
        let mut names = remotes.lines();
        match (names.next(), names.next()) {
            (Some(only), None) => Some(only.to_owned()),
            _ => None,
        }
    }

    /// Tags whose names start with `prefix`.
    pub fn tags(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let listing = self.run(&["tag", "--list", &format!("{prefix}*")])?;
        Ok(listing.lines().map(str::to_owned).collect())
    }

    /// File names in the current folder as it was at `rev` (empty if it did not exist).
    pub fn files_at(&self, rev: &str) -> anyhow::Result<Vec<String>> {
        let listing = self.run(&["ls-tree", "--name-only", rev, "--", "."])?;
        Ok(listing.lines().map(str::to_owned).collect())
    }

    /// The bytes of `name` (in the current folder) as it was at `rev`.
    pub fn show_file(&self, rev: &str, name: &str) -> anyhow::Result<Vec<u8>> {
        self.run_bytes(&["show", &format!("{rev}:./{name}")])
    }

    pub fn add(&self, paths: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["add", "--"];
        args.extend_from_slice(paths);
        self.run(&args).map(drop)
    }

    pub fn commit(&self, message: &str) -> anyhow::Result<()> {
        self.run(&["commit", "--quiet", "-m", message]).map(drop)
    }

    pub fn tag_annotated(&self, tag: &str, message: &str) -> anyhow::Result<()> {
        self.run(&["tag", "--annotate", tag, "-m", message])
            .map(drop)
    }

    /// Puts HEAD, index and work tree back to `commit`: only ever used to undo
    /// our own release commit on a tree the preflight proved clean.
    pub fn reset_hard(&self, commit: &str) -> anyhow::Result<()> {
        self.run(&["reset", "--quiet", "--hard", commit]).map(drop)
    }
}
