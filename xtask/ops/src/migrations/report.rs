//! The verdicts of `migrations check`: one line per check, printed for a
//! person or as JSON, and read by `release` and the benchmark.

use std::time::{Duration, Instant};

use serde_json::json;

/// A check's verdict.
pub enum Outcome {
    Pass(String),
    Skip(String),
    Fail(Vec<String>),
}

pub struct CheckLine {
    name: &'static str,
    outcome: Outcome,
    elapsed: Duration,
}

#[derive(Default)]
pub struct Report {
    lines: Vec<CheckLine>,
}

impl Report {
    pub(super) fn run(&mut self, name: &'static str, check: impl FnOnce() -> Outcome) {
        let start = Instant::now();
        let outcome = check();
        self.lines.push(CheckLine {
            name,
            outcome,
            elapsed: start.elapsed(),
        });
    }

    pub fn failed(&self) -> bool {
        self.lines
            .iter()
            .any(|l| matches!(l.outcome, Outcome::Fail(_)))
    }

    pub fn failed_names(&self) -> Vec<&'static str> {
        self.lines
            .iter()
            .filter(|l| matches!(l.outcome, Outcome::Fail(_)))
            .map(|l| l.name)
            .collect()
    }

    /// (check, verdict, time) per check, for the benchmark.
    pub fn timings(&self) -> Vec<(&'static str, &'static str, Duration)> {
        self.lines
            .iter()
            .map(|l| {
                let verdict = match l.outcome {
                    Outcome::Pass(_) => "ok",
                    Outcome::Skip(_) => "skipped",
                    Outcome::Fail(_) => "FAILED",
                };
                (l.name, verdict, l.elapsed)
            })
            .collect()
    }

    /// Every failure in full, one per line.
    pub fn problems(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| match &l.outcome {
                Outcome::Fail(problems) => {
                    Some(problems.iter().map(move |p| format!("{}: {p}", l.name)))
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(super) fn print(&self, migrations: &str) {
        println!("migrations check: {migrations}");
        for line in &self.lines {
            let (verdict, detail) = match &line.outcome {
                Outcome::Pass(detail) => ("ok", detail.clone()),
                Outcome::Skip(why) => ("skipped", why.clone()),
                Outcome::Fail(problems) => {
                    ("FAILED", format!("{} problem(s), below", problems.len()))
                }
            };
            println!(
                "  {verdict:8} {:20} {:>8.1} ms  {detail}",
                line.name,
                line.elapsed.as_secs_f64() * 1000.0
            );
        }
        for line in &self.lines {
            if let Outcome::Fail(problems) = &line.outcome {
                println!("\n{} failed:", line.name);
                for problem in problems {
                    println!("  {}", problem.replace('\n', "\n  "));
                }
            }
        }
    }

    pub(super) fn to_json(&self, migrations: &str) -> serde_json::Value {
        let checks: Vec<_> = self
            .lines
            .iter()
            .map(|l| {
                let (verdict, detail, problems) = match &l.outcome {
                    Outcome::Pass(d) => ("ok", d.clone(), Vec::new()),
                    Outcome::Skip(d) => ("skipped", d.clone(), Vec::new()),
                    Outcome::Fail(p) => ("failed", String::new(), p.clone()),
                };
                json!({"name": l.name, "verdict": verdict, "ms": l.elapsed.as_secs_f64() * 1000.0, "detail": detail, "problems": problems})
            })
            .collect();
        json!({"migrations": migrations, "ok": !self.failed(), "checks": checks})
    }
}
