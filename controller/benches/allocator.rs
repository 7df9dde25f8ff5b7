//! Allocator throughput and latency: `cargo bench -p ferrolb-controller --bench allocator`.
//!
//! 10,000 Services over one pool holding an IPv4 /16 and an IPv6 /64. Mix: 40% IPv4
//! single-stack, 20% IPv6 single-stack, 40% PreferDualStack (both families); every tenth
//! Service carries a sharing key shared with its neighbour. Each measurement is repeated
//! `RUNS` times; throughput is per run, latency per operation over all runs.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_controller::allocator::{Allocator, FamilyPolicy, Pool, Port, Request, ServiceKey};
use ferrolb_crds::address::{AddressRange, Family};

const SERVICES: usize = 10_000;
const RUNS: usize = 15;

fn range(s: &str) -> AddressRange {
    s.parse().expect("benchmark block")
}

fn pools() -> Vec<Pool> {
    vec![Pool::new(
        "bench",
        vec![range("198.18.0.0/16"), range("fd00:10::/64")],
    )]
}

fn request(i: usize) -> Request {
    let key = ServiceKey::new(format!("ns{}", i % 50), format!("svc-{i}"));
    let mut r = Request::new(key, Family::V4);
    match i % 5 {
        0 | 1 => {}
        2 => r.families = vec![Family::V6],
        _ => {
            r.families = vec![Family::V4, Family::V6];
            r.policy = FamilyPolicy::PreferDualStack;
        }
    }
    r.ports = vec![Port::tcp(80 + (i % 2) as u16)];
    if i % 10 < 2 {
        // Neighbours 10k and 10k+1 share: same key and families, different ports.
        r.families = vec![Family::V4];
        r.policy = FamilyPolicy::SingleStack;
        r.sharing_key = Some(format!("share-{}", i / 10));
    }
    r
}

fn filled() -> Allocator {
    let mut a = Allocator::new();
    a.set_pools(pools());
    for i in 0..SERVICES {
        a.ensure(&request(i))
            .expect("benchmark pool is large enough");
    }
    a
}

/// Deterministic xorshift: the same churn every run, no dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Report {
    name: &'static str,
    ops_per_run: usize,
    run_times: Vec<Duration>,
    latencies: Vec<Duration>,
}

impl Report {
    fn new(name: &'static str, ops_per_run: usize) -> Report {
        Report {
            name,
            ops_per_run,
            run_times: Vec::new(),
            latencies: Vec::with_capacity(ops_per_run * RUNS),
        }
    }

    /// One run: `op` on each of `items`, each call timed.
    fn run<T>(&mut self, items: impl IntoIterator<Item = T>, mut op: impl FnMut(T)) {
        let run = Instant::now();
        for x in items {
            let t = Instant::now();
            op(x);
            self.latencies.push(t.elapsed());
        }
        self.run_times.push(run.elapsed());
    }

    fn print(mut self) {
        let mut throughput: Vec<f64> = self
            .run_times
            .iter()
            .map(|t| self.ops_per_run as f64 / t.as_secs_f64())
            .collect();
        throughput.sort_by(f64::total_cmp);
        self.latencies.sort();
        let pct = |v: &[Duration], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        // The p99 of throughput is the slow tail: the 1st percentile of ops/s.
        let tp = |p: f64| throughput[((throughput.len() - 1) as f64 * p).round() as usize];
        println!(
            "{:<34} {:>10.0} ops/s median  {:>10.0} ops/s p99  | latency p50 {:>7.2} µs  p99 {:>7.2} µs  max {:>8.2} µs  ({} runs x {} ops)",
            self.name,
            tp(0.5),
            tp(0.01),
            pct(&self.latencies, 0.5).as_secs_f64() * 1e6,
            pct(&self.latencies, 0.99).as_secs_f64() * 1e6,
            pct(&self.latencies, 1.0).as_secs_f64() * 1e6,
            self.run_times.len(),
            self.ops_per_run,
        );
    }
}

fn main() {
    let requests: Vec<Request> = (0..SERVICES).map(request).collect();

    // 1. ensure of new Services, from empty to 10,000.
    let mut report = Report::new("ensure (new), 0 -> 10k services", SERVICES);
    for _ in 0..RUNS {
        let mut a = Allocator::new();
        a.set_pools(pools());
        report.run(&requests, |r| {
            black_box(a.ensure(black_box(r)).ok());
        });
        assert_eq!(a.len(), SERVICES);
    }
    report.print();

    // 2. ensure of unchanged Services (a full resync).
    let mut a = filled();
    let mut report = Report::new("ensure (unchanged), 10k services", SERVICES);
    for _ in 0..RUNS {
        report.run(&requests, |r| {
            black_box(a.ensure(black_box(r)).ok());
        });
    }
    report.print();

    // 3. churn: release a random Service, ensure a new one (one op = both), at 10,000.
    let mut report = Report::new("release+ensure churn at 10k", SERVICES);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<usize> = (0..SERVICES).collect();
    let mut next = SERVICES;
    let mut a = filled();
    for _ in 0..RUNS {
        let run = Instant::now();
        for _ in 0..SERVICES {
            let slot = rng.below(live.len());
            let gone = request(live[slot]).key;
            let new = request(next);
            let t = Instant::now();
            black_box(a.release(&gone));
            black_box(a.ensure(black_box(&new)).ok());
            report.latencies.push(t.elapsed());
            live[slot] = next;
            next += 1;
        }
        report.run_times.push(run.elapsed());
        assert_eq!(a.len(), SERVICES);
    }
    report.print();
    let churned = a;

    // 4. restore of 10,000 Services into a fresh allocator (controller start-up).
    let source = filled();
    let statuses: Vec<(Request, Vec<IpAddr>)> = requests
        .iter()
        .map(|r| {
            let ips = source.allocation(&r.key).map(|x| x.ips).unwrap_or_default();
            (r.clone(), ips)
        })
        .collect();
    let mut report = Report::new("restore, 10k services", SERVICES);
    for _ in 0..RUNS {
        let mut a = Allocator::new();
        a.set_pools(pools());
        report.run(&statuses, |(r, ips)| {
            black_box(a.restore(black_box(r), ips).ok());
        });
        assert_eq!(a.len(), SERVICES);
    }
    report.print();

    // Stats of the pool after the churn above (holdings fragmented into many runs), as the
    // controller computes them for status writes.
    let mut report = Report::new("pool stats, 10k churned services", 1);
    for _ in 0..RUNS {
        let run = Instant::now();
        black_box(churned.stats());
        let took = run.elapsed();
        report.run_times.push(took);
        report.latencies.push(took);
    }
    report.print();
}
