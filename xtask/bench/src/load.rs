//! The clients of the API benchmarks: threads, each with its own HTTP
//! connection, storing and revealing 1 KiB secrets as fast as the service
//! answers, every request timed. A request the service does not answer as
//! a user expects (201 stored, 200 revealed) stops the run: figures of
//! failed requests mean nothing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::service::{Service, agent};

/// Bytes of every value stored.
pub(super) const VALUE_BYTES: usize = 1024;

/// A value of exactly [`VALUE_BYTES`] that differs per `seed`.
pub(super) fn value(seed: u64) -> String {
    let head = format!("{seed:016x}");
    let fill: String = (0..VALUE_BYTES - head.len())
        .map(|i| char::from(b'a' + ((i as u64 + seed) % 26) as u8))
        .collect();
    head + &fill
}

/// What one client can ask the service.
#[derive(Clone)]
pub(super) struct Api {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Api {
    pub fn of(service: &Service) -> Api {
        Api {
            agent: agent(),
            base: service.base.clone(),
            auth: service.token.as_ref().map(|t| format!("Bearer {t}")),
        }
    }

    /// POST /api/secrets; 201 or an error naming the status.
    pub fn store(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let mut request = self.agent.post(format!("{}/api/secrets", self.base));
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let answer = request
            .send_json(serde_json::json!({"name": name, "value": value}))
            .context("POST /api/secrets")?;
        expect(answer, 201, "POST /api/secrets")
    }

    /// GET /api/secrets/NAME: the value revealed, or an error naming the status.
    pub fn reveal(&self, name: &str) -> anyhow::Result<String> {
        let mut request = self.agent.get(format!("{}/api/secrets/{name}", self.base));
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let mut answer = request.call().context("GET /api/secrets/{name}")?;
        let status = answer.status().as_u16();
        if status != 200 {
            return expect(answer, 200, "GET /api/secrets/{name}").map(|()| String::new());
        }
        let secret: serde_json::Value = answer
            .body_mut()
            .read_json()
            .context("GET /api/secrets/{name}: the answer is not JSON")?;
        match secret["value"].as_str() {
            Some(value) => Ok(value.to_owned()),
            None => bail!("GET /api/secrets/{{name}} answered 200 without a string `value`"),
        }
    }
}

/// Reads the body to the end (the client's cost is part of the request)
/// and checks the status; the body is not quoted: it may hold a value.
fn expect(
    mut answer: ureq::http::Response<ureq::Body>,
    want: u16,
    what: &str,
) -> anyhow::Result<()> {
    let status = answer.status().as_u16();
    let _ = answer.body_mut().read_to_vec();
    if status != want {
        bail!("{what} answered {status}, not {want}: the service is not serving as a user expects");
    }
    Ok(())
}

/// One timed request: when it started and how long it took.
#[derive(Clone, Copy)]
pub(super) struct Sample {
    pub kind: Kind,
    pub start: Instant,
    pub took: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Post,
    Get,
}

/// `clients` threads, each running `step(client, i)` for i = 0, 1, … until
/// `stop` says so; the samples of each client (in its order), or the first error.
pub(super) fn run_clients(
    clients: u64,
    stop: &Arc<AtomicBool>,
    step: impl Fn(u64, u64) -> anyhow::Result<Kind> + Send + Sync + 'static,
) -> anyhow::Result<Vec<Vec<Sample>>> {
    let step = Arc::new(step);
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let (step, stop) = (Arc::clone(&step), Arc::clone(stop));
            std::thread::spawn(move || -> anyhow::Result<Vec<Sample>> {
                let mut samples = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let kind =
                        step(client, i).inspect_err(|_| stop.store(true, Ordering::Relaxed))?;
                    samples.push(Sample {
                        kind,
                        start,
                        took: start.elapsed(),
                    });
                    i += 1;
                }
                Ok(samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    for thread in threads {
        let samples = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        all.push(samples);
    }
    Ok(all)
}

/// Runs the clients for `seconds`; the samples and the wall time they ran.
pub(super) fn run_for(
    clients: u64,
    seconds: Duration,
    step: impl Fn(u64, u64) -> anyhow::Result<Kind> + Send + Sync + 'static,
) -> anyhow::Result<(Vec<Vec<Sample>>, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let until = Instant::now() + seconds;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let start = Instant::now();
    let samples = run_clients(clients, &stop, step);
    let elapsed = start.elapsed();
    let _ = timer.join();
    Ok((samples?, elapsed))
}

/// Throughput and latency of a set of requests.
pub(super) struct Summary {
    pub count: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// `None` when there is no sample to summarise.
    pub fn of(samples: &[Sample], wall: Duration) -> Option<Summary> {
        let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
        took.sort();
        let max = *took.last()?;
        Some(Summary {
            count: took.len(),
            per_second: took.len() as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE),
            p50: percentile(&took, 50),
            p99: percentile(&took, 99),
            max,
        })
    }

    /// `  LABEL  1234.5 req/s  p50 1.23 ms  p99 4.56 ms  max 12.34 ms  (N requests)`.
    pub fn line(&self, label: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "  {label:28} {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  ({} requests)",
            self.per_second,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }
}

/// The nearest-rank percentile of sorted durations (not empty).
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50), Duration::from_millis(100));
        assert_eq!(percentile(&ms, 99), Duration::from_millis(198));
        assert_eq!(percentile(&ms[..1], 99), Duration::from_millis(1));
    }

    #[test]
    fn values_are_one_kib_and_differ() {
        assert_eq!(value(1).len(), VALUE_BYTES);
        assert_ne!(value(1), value(2));
    }
}
