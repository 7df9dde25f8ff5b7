//! What the lab benchmarks share: how many trials, a log stamp, a patient poll for a whole
//! cluster between trials, a figure's summary.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static START: OnceLock<Instant> = OnceLock::new();

/// When the bench started (the first call of this or [`stamp`]).
pub fn started() -> Instant {
    *START.get_or_init(Instant::now)
}

/// Seconds since the bench started, for its log.
pub fn stamp() -> String {
    format!("[{:6.1} s]", started().elapsed().as_secs_f64())
}

/// Trials per figure: FERROLB_BENCH_TRIALS, default 10.
pub fn trials() -> usize {
    std::env::var("FERROLB_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Polls `check` every 200 ms until it holds (its value) or `timeout` has passed (None, saying
/// why on stderr): a trial that finds no whole cluster is skipped, not failed.
pub fn settle<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Option<T> {
    let t = Instant::now();
    loop {
        match check() {
            Ok(v) => return Some(v),
            Err(why) if t.elapsed() > timeout => {
                eprintln!("{what}: not after {timeout:?}: {why}");
                return None;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Median, p99 and extremes of a figure's samples.
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p99: f64,
    /// NaN without samples, as are the others.
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        Summary {
            n: v.len(),
            median: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// `NAME n=N median M UNIT  p99 P UNIT  min A  max B`: NAME, N and each value padded to
    /// `widths` (name, count, value), values with `decimals` decimals, UNIT to two characters.
    pub fn row(
        &self,
        name: &str,
        unit: &str,
        (nw, cw, vw): (usize, usize, usize),
        decimals: usize,
    ) -> String {
        format!(
            "{name:<nw$} n={:<cw$} median {:>vw$.decimals$} {unit:<2}  p99 {:>vw$.decimals$} {unit:<2}  min {:>vw$.decimals$}  max {:>vw$.decimals$}",
            self.n, self.median, self.p99, self.min, self.max,
        )
    }
}

/// Percentile of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[cfg(test)]
mod tests;
