//! The program as the operator typed it, for the advice it prints:
//! `secrets-ops`, or `cargo xtask` when the repository automation runs it.

use std::fmt;

/// Environment variable the repository automation sets when it runs this
/// program for `cargo xtask migrate` (and the rest), so that printed advice
/// names the command the operator typed.
pub const AS_ENV: &str = "SECRETS_OPS_AS";

/// The program as the operator types it: `secrets-ops`, or `cargo xtask`
/// in a checkout. Shown in advice: `{OPS} restore …`.
pub struct Program;

pub const OPS: Program = Program;

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(program_name())
    }
}

/// `cargo xtask` when run by it, else `secrets-ops`.
pub fn program_name() -> &'static str {
    match std::env::var(AS_ENV) {
        Ok(v) if v == "cargo xtask" => "cargo xtask",
        _ => "secrets-ops",
    }
}
