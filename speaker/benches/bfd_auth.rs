//! Cost of BFD authentication per control packet: `cargo bench -p ferrolb-speaker --bench
//! bfd_auth`.
//!
//! Seal (sender: encode, digest, sequence number) and receive (receiver: TTL check, decode,
//! digest check, sequence window, state machine) of one packet, unauthenticated and with each
//! RFC 5880 type. Each measurement is `RUNS` runs of `PER_RUN` packets; figures are per packet
//! (median run). At the default 300 ms interval a session handles ~7 packets a second.

use std::hint::black_box;
use std::time::Instant;

use ferrolb_speaker::bgp::bfd::{AuthKey, AuthType, BfdAction, BfdConfig, BfdSession, BfdState};

const RUNS: usize = 15;
const PER_RUN: usize = 20_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn config(disc: u32, auth: Option<AuthType>) -> BfdConfig {
    let mut c = BfdConfig::new(disc);
    // A key of the longest length the type takes.
    c.auth =
        auth.map(|k| AuthKey::new(k, 1, &b"0123456789abcdefghij"[..k.max_key_len()]).expect("key"));
    c
}

fn main() {
    let kinds = [
        None,
        Some(AuthType::KeyedMd5),
        Some(AuthType::MeticulousKeyedMd5),
        Some(AuthType::KeyedSha1),
        Some(AuthType::MeticulousKeyedSha1),
    ];
    for kind in kinds {
        let mut tx = BfdSession::new(config(1, kind));
        let mut rx = BfdSession::new(config(2, kind));
        tx.set_xmit_auth_seq(1);
        // The sender's first packet (Down): the receiver goes to Init and stays there; what
        // the packet says does not change the cost.
        let p = tx
            .start()
            .into_iter()
            .find_map(|a| match a {
                BfdAction::Send(p) => Some(p),
                _ => None,
            })
            .expect("a packet");
        let mut seal_ns = Vec::new();
        let mut recv_ns = Vec::new();
        let mut wires = Vec::with_capacity(PER_RUN);
        for _ in 0..RUNS {
            wires.clear();
            let t = Instant::now();
            for _ in 0..PER_RUN {
                wires.push(tx.seal(black_box(&p)));
            }
            seal_ns.push(t.elapsed().as_nanos() as f64 / PER_RUN as f64);
            let t = Instant::now();
            for w in &wires {
                let r = rx.receive(black_box(w.as_bytes()), Some(255));
                assert!(r.is_ok(), "{r:?}");
            }
            recv_ns.push(t.elapsed().as_nanos() as f64 / PER_RUN as f64);
        }
        assert_ne!(rx.state(), BfdState::AdminDown);
        let len = tx.seal(&p).as_bytes().len();
        println!(
            "{:<22} {len:>2} B packet: seal {:>6.0} ns  receive {:>6.0} ns (median of {RUNS} runs of {PER_RUN})",
            kind.map_or("none".to_string(), |k| format!("{k:?}")),
            median(seal_ns),
            median(recv_ns),
        );
    }
}
