//! Progress on a terminal, and only there: a one-line bar on stderr redrawn
//! in place, for the steps that take seconds on a large database (rehearsal
//! snapshot, backup, migration, restore) and for `db copy`. Piped output (CI
//! logs, the journal) keeps its plain lines; `TERM=dumb` turns it off. No
//! colour is used, so `NO_COLOR` has nothing to turn off.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// Whether stderr is a terminal that can redraw a line.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// `\r  label  [#####.....] 512/1045 MiB` (bytes) or `… 12/40 rows`.
pub fn draw(label: &str, done: u64, total: u64, unit: Unit) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let amount = match unit {
        Unit::Bytes => format!("{}/{} MiB", done >> 20, total >> 20),
        Unit::Rows => format!("{done}/{total} rows"),
    };
    let mut err = std::io::stderr();
    let _ = write!(err, "\r  {label:24} [{bar}] {amount}");
    let _ = err.flush();
}

/// Clears the line a bar was drawn on.
pub fn clear() {
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{:80}\r", "");
    let _ = err.flush();
}

#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Bytes,
    Rows,
}

/// A file growing towards `total` bytes (a copy being written, a WAL),
/// drawn five times a second until dropped. Nothing at all off a terminal.
pub struct FileWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn watch_file(label: &str, path: &Path, total: u64) -> FileWatch {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = on_terminal().then(|| {
        let (label, path, stop): (String, PathBuf, _) = (label.into(), path.into(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let done = std::fs::metadata(&path).map_or(0, |m| m.len());
                draw(&label, done.min(total), total, Unit::Bytes);
                std::thread::sleep(Duration::from_millis(200));
            }
            clear();
        })
    });
    FileWatch { stop, thread }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
