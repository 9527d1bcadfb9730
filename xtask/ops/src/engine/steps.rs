//! Numbered, timed steps: each printed as `[n/7] name ... 1.23 s  detail`
//! and appended to the journal, with credentials redacted from both.

use std::time::{Duration, Instant};

use super::journal::Journal;
use crate::redact::redact;

/// The runbook's steps, for the `[n/7]` labels.
const STEPS: usize = 7;

/// A result and how long it took.
pub type Timed<T> = (anyhow::Result<T>, Duration);

/// Runs `work` and times it.
pub fn timed<T>(work: impl FnOnce() -> anyhow::Result<T>) -> Timed<T> {
    let start = Instant::now();
    let result = work();
    (result, start.elapsed())
}

/// A step's detail line, or its failure, for a message.
pub fn outcome(result: &anyhow::Result<String>) -> String {
    match result {
        Ok(detail) => detail.clone(),
        Err(e) => format!("FAILED: {e:#}"),
    }
}

pub struct Steps<'a> {
    journal: &'a Journal,
    dry_run: bool,
    next: usize,
}

impl<'a> Steps<'a> {
    pub fn new(journal: &'a Journal, dry_run: bool) -> Self {
        Steps {
            journal,
            dry_run,
            next: 1,
        }
    }

    /// Runs, times, prints and journals the next step.
    pub fn run<T>(
        &mut self,
        name: &str,
        step: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> anyhow::Result<T> {
        let result = timed(step);
        self.report(name, result)
    }

    /// Prints and journals a step that was timed elsewhere.
    pub fn report<T>(
        &mut self,
        name: &str,
        (result, elapsed): Timed<(T, String)>,
    ) -> anyhow::Result<T> {
        let label = self.next_label(name);
        match result {
            Ok((value, detail)) => {
                println!(
                    "{label} ... {:.2} s  {}",
                    elapsed.as_secs_f64(),
                    redact(&detail)
                );
                self.record(&label, elapsed, "ok", &detail);
                Ok(value)
            }
            Err(error) => {
                println!("{label} ... {:.2} s  FAILED", elapsed.as_secs_f64());
                self.record(&label, elapsed, "FAILED", &format!("{error:#}"));
                Err(error.context(format!("step {label} failed")))
            }
        }
    }

    pub fn skip(&mut self, name: &str, why: &str) {
        let label = self.next_label(name);
        println!("{label} ... skipped: {why}");
    }

    /// Journals an unnumbered line (a dry run journals nothing).
    pub fn record(&self, step: &str, elapsed: Duration, outcome: &str, detail: &str) {
        if !self.dry_run {
            self.journal.record(step, elapsed, outcome, &redact(detail));
        }
    }

    /// Journals the outcome of recovery work done after a failed step.
    pub fn record_outcome(&self, step: &str, (result, elapsed): &Timed<String>) {
        let (status, detail) = match result {
            Ok(detail) => ("ok", detail.clone()),
            Err(e) => ("FAILED", format!("{e:#}")),
        };
        self.record(step, *elapsed, status, &detail);
    }

    fn next_label(&mut self, name: &str) -> String {
        let label = format!("[{}/{STEPS}] {name}", self.next);
        self.next += 1;
        label
    }
}
