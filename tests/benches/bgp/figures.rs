//! What the trials yield: figures (samples, printed with their summary) and the client's failed
//! requests during a trial.

use std::time::{Duration, Instant};

use ferrolb_tests::bench::Summary;
use ferrolb_tests::bgp::ROUTERS;
use ferrolb_tests::probe::Probe;

/// Samples of one figure.
#[derive(Default)]
pub struct Figure {
    name: String,
    /// "ms", or "" for counts.
    unit: &'static str,
    v: Vec<f64>,
    missed: usize,
}

impl Figure {
    pub fn new(name: &str) -> Figure {
        Figure {
            name: name.to_string(),
            unit: "ms",
            ..Figure::default()
        }
    }

    pub fn count(name: &str) -> Figure {
        Figure {
            name: name.to_string(),
            unit: "",
            ..Figure::default()
        }
    }

    pub fn add(&mut self, d: Option<Duration>) {
        match d {
            Some(d) => self.v.push(d.as_secs_f64() * 1000.0),
            None => self.missed += 1,
        }
    }

    /// Milliseconds, possibly negative (None: timed out).
    pub fn add_ms(&mut self, ms: Option<f64>) {
        match ms {
            Some(ms) => self.v.push(ms),
            None => self.missed += 1,
        }
    }

    pub fn add_n(&mut self, n: usize) {
        self.v.push(n as f64);
    }

    pub fn print(&self, target: Option<f64>) {
        let over = target.map(|t| self.v.iter().filter(|x| **x >= t).count());
        println!(
            "{}{}{}",
            Summary::of(&self.v).row(&self.name, self.unit, (64, 3, 7), 1),
            match (target, over) {
                (Some(t), Some(o)) => format!("  (target < {t} ms: {o} over)"),
                _ => String::new(),
            },
            if self.missed > 0 {
                format!("  ({} timed out)", self.missed)
            } else {
                String::new()
            },
        );
    }
}

pub type Figures = Vec<(Figure, Option<f64>)>;

/// Figures without a target, in order.
pub fn untargeted(figs: impl IntoIterator<Item = Figure>) -> Figures {
    figs.into_iter().map(|f| (f, None)).collect()
}

/// A figure for each router, in ROUTERS' order: `WHAT (frr)`, `WHAT (bird)`.
pub fn per_router(what: &str) -> [Figure; 2] {
    ROUTERS.map(|r| Figure::new(&format!("{what} ({})", r.name)))
}

/// `later - earlier` in milliseconds, negative when `later` came first.
pub fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64() * 1000.0
    } else {
        -(earlier - later).as_secs_f64() * 1000.0
    }
}

/// Failed requests among those started after `t0`: how many of how many, runs of them (ms after
/// `t0`, count), and when the last one started.
pub struct Failures {
    pub failed: usize,
    pub sent: usize,
    pub runs: Vec<(u128, usize)>,
    pub last: Option<Duration>,
}

/// `failed F/S (runs at ms: count R)`, for a trial's log line.
impl std::fmt::Display for Failures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed {}/{} (runs at ms: count {:?})",
            self.failed, self.sent, self.runs
        )
    }
}

pub fn failures(probes: &[Probe], t0: Instant) -> Failures {
    let after: Vec<&Probe> = probes.iter().filter(|p| p.at >= t0).collect();
    let mut runs: Vec<(u128, usize)> = Vec::new();
    let mut in_run = false;
    for p in &after {
        match (&p.answer, in_run) {
            (None, false) => {
                runs.push(((p.at - t0).as_millis(), 1));
                in_run = true;
            }
            (None, true) => {
                if let Some(r) = runs.last_mut() {
                    r.1 += 1;
                }
            }
            (Some(_), _) => in_run = false,
        }
    }
    Failures {
        failed: after.iter().filter(|p| p.answer.is_none()).count(),
        sent: after.len(),
        runs,
        last: after
            .iter()
            .rev()
            .find(|p| p.answer.is_none())
            .map(|p| p.at - t0),
    }
}
