//! Running the operations tool (`secrets-ops`, xtask/ops) and the
//! benchmarks (`secrets-bench`, xtask/bench) from a checkout: `cargo xtask
//! migrate …` is `secrets-ops --repo <root> migrate …`, with advice worded
//! for `cargo xtask`.
//!
//! They are separate programs so that this crate stays light: a fresh
//! clone's `cargo xtask version` compiles none of their dependencies.

use std::{ffi::OsString, os::unix::process::CommandExt, path::Path, process::Command};

use anyhow::Context;

/// A program of the workspace this command starts.
#[derive(Clone, Copy)]
pub enum Program {
    Ops,
    Bench,
}

impl Program {
    fn package(self) -> &'static str {
        match self {
            Program::Ops => "secrets-ops",
            Program::Bench => "secrets-bench",
        }
    }

    /// The variable that names an already built binary (tests, CI), in
    /// place of `cargo run`.
    fn env(self) -> &'static str {
        match self {
            Program::Ops => "SECRETS_OPS",
            Program::Bench => "SECRETS_BENCH",
        }
    }
}

/// The program run with `args`, for `repo`: the binary `$SECRETS_OPS`
/// (`$SECRETS_BENCH`) names, else `cargo run` in the checkout, which builds
/// it first when its sources changed.
pub fn command(program: Program, repo: &Path, args: &[OsString]) -> Command {
    let mut command = match std::env::var_os(program.env()).filter(|v| !v.is_empty()) {
        Some(binary) => Command::new(binary),
        None => {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut command = Command::new(cargo);
            // Not --quiet: a fresh clone's first run compiles it, and
            // cargo's progress says so instead of minutes of silence.
            command
                .current_dir(repo)
                .args(["run", "--package", program.package(), "--"]);
            command
        }
    };
    // `--repo` once: the operator's own, else this checkout.
    if !args
        .iter()
        .any(|a| a == "--repo" || a.to_string_lossy().starts_with("--repo="))
    {
        command.arg("--repo").arg(repo);
    }
    command.args(args).env("SECRETS_OPS_AS", "cargo xtask");
    command
}

/// Becomes the program (exec): its output, exit status and signals are the
/// command's own, as if the operator had run it.
pub fn exec(program: Program, repo: &Path, args: &[OsString]) -> anyhow::Error {
    let mut command = command(program, repo, args);
    let error = command.exec();
    anyhow::Error::new(error).context(format!(
        "starting {} ({:?}): is cargo on PATH, or ${} the path of a built binary?",
        program.package(),
        command.get_program(),
        program.env()
    ))
}

/// Runs the program to its end, its stdout captured (for `release`'s
/// migrations check).
pub fn output(
    program: Program,
    repo: &Path,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let mut command = command(program, repo, &args);
    command
        .stderr(std::process::Stdio::piped())
        .output()
        .with_context(|| {
            format!(
                "running {} ({:?})",
                program.package(),
                command.get_program()
            )
        })
}
