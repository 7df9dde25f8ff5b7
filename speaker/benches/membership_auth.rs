//! Cost of authenticating membership datagrams: `cargo bench -p ferrolb-speaker --bench
//! membership_auth`.
//!
//! Seal (sender: header, HMAC-SHA256 over the address pair and the datagram) and open (receiver:
//! key lookup, constant-time tag check) for foca payloads of typical sizes: ~200 bytes (a probe
//! with a few piggybacked updates) up to the largest that fits a datagram. Each measurement is
//! `RUNS` runs of `PER_RUN` datagrams; latencies are per datagram over all runs (Instant
//! overhead, ~20-30 ns, included), throughput per run.
//!
//! Last run (shared 2-core machine, load ~4; release build):
//!
//! ```text
//! seal    249 B datagram ( 200 B payload): p50    360 ns  p99    411 ns
//! open    249 B datagram ( 200 B payload): p50    361 ns  p99    401 ns
//! seal    649 B datagram ( 600 B payload): p50    581 ns  p99    651 ns
//! open    649 B datagram ( 600 B payload): p50    601 ns  p99    671 ns
//! seal   1049 B datagram (1000 B payload): p50    922 ns  p99   1033 ns
//! open   1049 B datagram (1000 B payload): p50    912 ns  p99   1032 ns
//! seal   1400 B datagram (1351 B payload): p50   1103 ns  p99   1232 ns
//! open   1400 B datagram (1351 B payload): p50   1112 ns  p99   1252 ns
//! ```
//!
//! A speaker sends and receives ~25 datagrams/s each way (config.rs), most under 200 bytes:
//! ~20 µs of CPU per second for authentication.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferrolb_speaker::membership::config::MAX_DATAGRAM;
use ferrolb_speaker::membership::keys::KeyRing;
use ferrolb_speaker::membership::seal::{self, OVERHEAD};

const RUNS: usize = 15;
const PER_RUN: usize = 10_000;

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, payload: usize, mut lat: Vec<Duration>, runs: &[Duration]) {
    lat.sort();
    let mut rates: Vec<f64> = runs
        .iter()
        .map(|t| PER_RUN as f64 / t.as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "{name:<5} {:>5} B datagram ({payload:>4} B payload): p50 {:>6} ns  p99 {:>6} ns  max {:>7} ns | {:>9.0} /s median run",
        payload + OVERHEAD,
        pct(&lat, 0.5).as_nanos(),
        pct(&lat, 0.99).as_nanos(),
        pct(&lat, 1.0).as_nanos(),
        rates[rates.len() / 2],
    );
}

fn main() {
    let ring = KeyRing::new(&[[0x42_u8; 32], [0x43_u8; 32]]).expect("keys");
    let from: SocketAddr = "198.18.0.11:7946".parse().expect("addr");
    let to: SocketAddr = "198.18.0.12:7946".parse().expect("addr");
    for payload in [200, 600, 1000, MAX_DATAGRAM - OVERHEAD] {
        let body: Vec<u8> = (0..payload).map(|i| (i * 7) as u8).collect();
        let mut out = BytesMut::with_capacity(MAX_DATAGRAM);

        let mut lat = Vec::with_capacity(RUNS * PER_RUN);
        let mut runs = Vec::with_capacity(RUNS);
        let mut seq = 1_700_000_000_000_000_u64;
        for _ in 0..RUNS {
            let run = Instant::now();
            for _ in 0..PER_RUN {
                seq += 1;
                let t = Instant::now();
                seal::seal(&ring, seq, from, to, black_box(&body), &mut out);
                black_box(&out);
                lat.push(t.elapsed());
                out.clear();
            }
            runs.push(run.elapsed());
        }
        report("seal", payload, lat, &runs);

        seal::seal(&ring, seq, from, to, &body, &mut out);
        let datagram = out.to_vec();
        let mut lat = Vec::with_capacity(RUNS * PER_RUN);
        let mut runs = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let run = Instant::now();
            for _ in 0..PER_RUN {
                let t = Instant::now();
                let opened = seal::open(&ring, from, to, black_box(&datagram));
                black_box(opened.is_ok());
                lat.push(t.elapsed());
            }
            runs.push(run.elapsed());
        }
        assert!(seal::open(&ring, from, to, &datagram).is_ok());
        report("open", payload, lat, &runs);
    }
}
