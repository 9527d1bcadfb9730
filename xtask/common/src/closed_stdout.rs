//! `cargo xtask version --json | head -1`: when the reader of stdout goes
//! away, `println!` panics ("failed printing to stdout: Broken pipe", exit
//! 101). Like other command-line tools, the xtask then ends quietly with the
//! status a shell gives a process killed by SIGPIPE (128 + 13). The panic
//! still unwinds, so every guard (lock, maintenance flag, scratch database)
//! is released on the way out.

use std::panic;

/// 128 + SIGPIPE: what `set -o pipefail` reports for `yes | head -1`.
pub const EXIT: u8 = 141;

/// Runs `command`; a panic from writing to a closed stdout becomes `None`,
/// said nowhere; any other panic is reported and unwinds as before.
pub fn run_quietly<T>(command: impl FnOnce() -> T) -> Option<T> {
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout(info.payload()) {
            default_hook(info);
        }
    }));
    match panic::catch_unwind(panic::AssertUnwindSafe(command)) {
        Ok(value) => Some(value),
        Err(payload) if is_closed_stdout(payload.as_ref()) => None,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// std's message for a failed `print!`: "failed printing to stdout: Broken pipe (os error 32)".
fn is_closed_stdout(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to stdout") && message.contains("os error 32")
}
