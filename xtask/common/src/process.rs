//! Running another program with a deadline: stop and start commands of the
//! service, git's hooks. A program that hangs is killed with everything it
//! started (its process group), and the error names it and the setting that
//! gives it more time.

use std::{
    io::Read,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

/// Runs `command` (never through a shell) and waits at most `timeout`;
/// `shown` names it in messages, `raise` is the setting that lengthens the wait.
pub fn run_with_timeout(
    command: &mut Command,
    shown: &str,
    timeout: Duration,
    raise: &str,
) -> anyhow::Result<()> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting `{shown}`: is it installed and on PATH?"))?;
    // Read stderr as it comes: a chatty program must not block on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    // The wait runs on a thread of its own, so the deadline is a channel's
    // timeout, not a poll.
    let pgid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = match finished.recv_timeout(timeout) {
        Ok(status) => status.with_context(|| format!("waiting for `{shown}`"))?,
        Err(_) => {
            kill_group(pgid);
            // The waiter reaps it: the group is dead, so this is quick.
            let _ = finished.recv_timeout(Duration::from_secs(5));
            bail!(
                "`{shown}` did not finish within {} s and was killed with its process group (a process it \
                 detached into a session of its own may still run): check it, or raise {raise}",
                timeout.as_secs()
            );
        }
    };
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        bail!("`{shown}` exited with {status}: {}", stderr.trim());
    }
    Ok(())
}

/// The process that has `path` open, as `pid N (command line)`, found
/// through /proc (Linux); None when no process does, or /proc says nothing.
pub fn holder_of(path: &std::path::Path) -> Option<String> {
    let wanted = path.canonicalize().ok()?;
    let processes = std::fs::read_dir("/proc").ok()?;
    processes.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let holds = std::fs::read_dir(entry.path().join("fd"))
            .ok()?
            .filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == wanted));
        holds.then(|| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            format!("pid {pid} (`{}`)", words.join(" "))
        })
    })
}

/// SIGKILL to the process group `pgid` (the child's own, see above).
fn kill_group(pgid: u32) {
    let pgid = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pgid) = pgid {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &[&str], timeout: Duration) -> anyhow::Result<()> {
        let (program, args) = words.split_first().expect("a program");
        run_with_timeout(
            Command::new(program).args(args),
            &words.join(" "),
            timeout,
            "THE_SETTING",
        )
    }

    #[test]
    fn commands_time_out_with_their_children_and_report_failures() {
        let marker = format!("sleep 7{}", std::process::id() % 1000);
        let script = format!("{marker} & wait");
        let err = run(&["sh", "-c", &script], Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did not finish within") && err.contains("THE_SETTING"),
            "{err}"
        );
        std::thread::sleep(Duration::from_millis(100));
        let left = Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .expect("pgrep runs");
        assert!(left.stdout.is_empty(), "the child survived: {:?}", left);
        let err = run(
            &["sh", "-c", "echo nope >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("nope") && err.contains("exit status: 3"),
            "{err}"
        );
        let err = run(&["no-such-program-xyz"], Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("on PATH"), "{err}");
    }
}
