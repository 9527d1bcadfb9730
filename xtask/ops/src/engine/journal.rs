//! The audit trail of every maintenance window: one line per step appended
//! to `<backup folder>/migrate.journal` (0600), never rewritten.

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

pub struct Journal {
    path: PathBuf,
    run: String,
}

impl Journal {
    pub fn new(backup_dir: &Path, command: &str) -> Journal {
        Journal {
            path: backup_dir.join("migrate.journal"),
            run: format!("{command} pid {}", std::process::id()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `time  run  step  duration  outcome  details`; a journal that
    /// cannot be written is reported, never fatal to the window itself.
    pub fn record(&self, step: &str, elapsed: Duration, outcome: &str, details: &str) {
        let line = format!(
            "{}\t{}\t{step}\t{:.3}s\t{outcome}\t{}\n",
            crate::stamp::timestamp(),
            self.run,
            elapsed.as_secs_f64(),
            details.replace(['\n', '\t'], " ")
        );
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "warning: could not append to the journal {}: {e}",
                self.path.display()
            );
        }
    }
}
