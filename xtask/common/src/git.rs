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
        self.run_bytes(args).map(Self::text)
    }

    /// Runs git and returns its raw standard output (file contents too).
    fn run_bytes(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        self.output(args, None, None)
    }

    /// Runs git, optionally on another index file and with standard input.
    fn output(
        &self,
        args: &[&str],
        index: Option<&Path>,
        stdin: Option<&[u8]>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut command = cmd!(self.sh, "git {args...}").quiet().ignore_status();
        if let Some(index) = index {
            command = command.env("GIT_INDEX_FILE", index);
        }
        if let Some(stdin) = stdin {
            command = command.stdin(stdin);
        }
        let output = command
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

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8_lossy(&bytes).trim_end().to_owned()
    }

    // The release is staged as objects first and published by one ref
    // transaction, so a crash leaves either nothing or the whole release.

    /// Writes `content` as the blob `path` would get from `git add`.
    pub fn hash_object(&self, path: &str, content: &[u8]) -> anyhow::Result<String> {
        self.output(
            &["hash-object", "-w", "--stdin", "--path", path],
            None,
            Some(content),
        )
        .map(Self::text)
    }

    /// The tree of `base` with `entries` (path, blob) replaced, built in `index`.
    pub fn write_tree(
        &self,
        index: &Path,
        base: &str,
        entries: &[(String, String)],
    ) -> anyhow::Result<String> {
        self.output(&["read-tree", base], Some(index), None)?;
        for (path, blob) in entries {
            let mode =
                Self::text(self.output(&["ls-files", "--stage", "--", path], Some(index), None)?);
            let mode = mode
                .split_whitespace()
                .next()
                .unwrap_or("100644")
                .to_owned();
            self.output(
                &[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("{mode},{blob},{path}"),
                ],
                Some(index),
                None,
            )?;
        }
        self.output(&["write-tree"], Some(index), None)
            .map(Self::text)
    }

    /// The repository's pre-commit hook, run against the staged `index`,
    /// killed (with what it started) when it runs past `timeout`.
    pub fn pre_commit_hook(
        &self,
        index: &Path,
        timeout: std::time::Duration,
    ) -> anyhow::Result<()> {
        let mut command = std::process::Command::new("git");
        command
            .args(["hook", "run", "--ignore-missing", "pre-commit"])
            .current_dir(self.sh.current_dir())
            .env("GIT_INDEX_FILE", index);
        crate::process::run_with_timeout(
            &mut command,
            "the pre-commit hook (git hook run pre-commit)",
            timeout,
            "RELEASE_HOOK_TIMEOUT_SECS (hook-timeout-secs in [workspace.metadata.release])",
        )
    }

    pub fn commit_tree(&self, tree: &str, parent: &str, message: &str) -> anyhow::Result<String> {
        self.output(
            &["commit-tree", tree, "-p", parent, "-m", message],
            None,
            None,
        )
        .map(Self::text)
    }

    /// An annotated tag object for `commit` (no ref yet).
    pub fn tag_object(&self, commit: &str, tag: &str, message: &str) -> anyhow::Result<String> {
        let tagger = self.run(&["var", "GIT_COMMITTER_IDENT"])?;
        let body =
            format!("object {commit}\ntype commit\ntag {tag}\ntagger {tagger}\n\n{message}\n");
        self.output(&["mktag"], None, Some(body.as_bytes()))
            .map(Self::text)
    }

    /// Moves `branch` from `old` to `commit` and creates `tag`, both or neither.
    pub fn publish(
        &self,
        branch: &str,
        old: &str,
        commit: &str,
        tag: &str,
        tag_object: &str,
    ) -> anyhow::Result<()> {
        let transaction = format!(
            "start\nupdate refs/heads/{branch} {commit} {old}\ncreate refs/tags/{tag} {tag_object}\nprepare\ncommit\n"
        );
        self.output(
            &["update-ref", "--stdin"],
            None,
            Some(transaction.as_bytes()),
        )
        .map(drop)
    }

    /// The index back in step with HEAD (after the work tree caught up).
    pub fn reset_index(&self) -> anyhow::Result<()> {
        self.run(&["reset", "--quiet"]).map(drop)
    }

    pub fn head_subject(&self) -> anyhow::Result<String> {
        self.run(&["log", "-1", "--format=%s"])
    }

    /// The commit a tag points at, if the tag exists.
    pub fn tag_commit(&self, tag: &str) -> Option<String> {
        self.run(&[
            "rev-parse",
            "--quiet",
            "--verify",
            &format!("refs/tags/{tag}^{{commit}}"),
        ])
        .ok()
    }

    /// Files HEAD's commit changed.
    pub fn head_files(&self) -> anyhow::Result<Vec<String>> {
        let listing = self.run(&["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"])?;
        Ok(listing.lines().map(str::to_owned).collect())
    }

    /// Puts `paths` back as HEAD has them.
    pub fn checkout_head(&self, paths: &[String]) -> anyhow::Result<()> {
        let mut args = vec!["checkout", "HEAD", "--"];
        args.extend(paths.iter().map(String::as_str));
        self.run(&args).map(drop)
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
    pub fn files_at(&self, rev: &str, folder: &str) -> anyhow::Result<Vec<String>> {
        let listing = self.run(&["ls-tree", "--name-only", rev, "--", folder])?;
        Ok(listing.lines().map(str::to_owned).collect())
    }

    /// The bytes of `name` (in the current folder) as it was at `rev`.
    pub fn show_file(&self, rev: &str, name: &str) -> anyhow::Result<Vec<u8>> {
        self.run_bytes(&["show", &format!("{rev}:./{name}")])
    }
}
