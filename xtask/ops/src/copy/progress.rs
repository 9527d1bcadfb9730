//! A progress bar per table, only when stderr is a terminal.

use std::time::{Duration, Instant};

/// A one-line progress bar on stderr, redrawn at most ten times a second.
pub(super) struct Progress {
    table: String,
    total: u64,
    enabled: bool,
    last: Instant,
}

impl Progress {
    pub(super) fn new(table: &str, total: u64, enabled: bool) -> Progress {
        Progress {
            table: table.to_owned(),
            total,
            enabled,
            last: Instant::now(),
        }
    }

    pub(super) fn tick(&mut self, done: u64) {
        if self.enabled && self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            self.draw(done);
        }
    }

    pub(super) fn draw(&self, done: u64) {
        crate::progress::draw(&self.table, done, self.total, crate::progress::Unit::Rows);
    }

    pub(super) fn done(&self, done: u64) {
        if self.enabled {
            self.draw(done);
            eprintln!();
        }
    }
}
