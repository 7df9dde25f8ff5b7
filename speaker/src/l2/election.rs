//! Which node announces an IP, decided by every speaker alone.
//!
//! Rendezvous (highest random weight) hashing: each candidate node gets the
//! score `sha256("<node>#<ip>")` and the lowest digest wins. Every speaker
//! with the same candidate set computes the same winner without talking to
//! the others; IPs spread evenly; removing a node moves only the IPs it held,
//! and adding one moves only the IPs it now wins. Lowest-digest-of
//! `node#ip` is also the ordering MetalLB documents for its L2 election, so
//! both pick the same node for the same view, which keeps a migration quiet.
//!
//! SHA-256 is implemented here (FIPS 180-4) because the score must be stable
//! across Rust releases and machines (std's `DefaultHasher` is not), and the
//! workspace has no hashing crate. It is not used for anything secret.

use std::net::IpAddr;

/// A candidate's score for `ip`; lower wins.
pub fn score(node: &str, ip: IpAddr) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    hasher.update(b"#");
    hasher.update(ip.to_string().as_bytes());
    hasher.finish()
}

/// The node that announces `ip` among `candidates`, or `None` if there are
/// none. The caller filters candidates first (live, selected by the
/// advertisement, not excluded, and for `externalTrafficPolicy: Local` having
/// a serving endpoint). Duplicates and order do not matter; equal scores
/// (never seen in practice) fall back to the smaller name so the answer stays
/// deterministic.
pub fn elect<'a, I>(ip: IpAddr, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|node| (score(node, ip), node))
        .min()
        .map(|(_, node)| node)
}

/// Minimal streaming SHA-256 (FIPS 180-4).
struct Sha256 {
    state: [u32; 8],
    block: [u8; 64],
    filled: usize,
    length: u64,
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

impl Sha256 {
    fn new() -> Self {
        Self {
            state: H0,
            block: [0; 64],
            filled: 0,
            length: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.filled).min(data.len());
            let (head, rest) = data.split_at(take);
            self.block[self.filled..self.filled + take].copy_from_slice(head);
            self.filled += take;
            data = rest;
            if self.filled == 64 {
                self.compress();
                self.filled = 0;
            }
        }
    }

    fn finish(mut self) -> [u8; 32] {
        let bits = self.length.wrapping_mul(8);
        // Padding: 0x80, zeros up to 56 mod 64, then the bit length.
        self.update(&[0x80]);
        while self.filled != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn compress(&mut self) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(self.block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        for (k, w) in K.iter().zip(w) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(w);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn sha256_hex(data: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(data);
        h.finish().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_known_answers() {
        // FIPS 180-4 / NIST CAVS vectors.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha256_hex(
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
            ),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        );
        assert_eq!(
            sha256_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn sha256_streaming_matches_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for split in [0, 1, 55, 56, 63, 64, 65, 127, 128, 999, 1000] {
            let mut h = Sha256::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finish(), {
                let mut one = Sha256::new();
                one.update(&data);
                one.finish()
            });
        }
    }

    #[test]
    fn score_is_sha256_of_node_hash_ip() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut h = Sha256::new();
        h.update(b"node-a#192.0.2.1");
        assert_eq!(score("node-a", ip), h.finish());
        // IPv6 uses the RFC 5952 text form.
        let ip6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let mut h = Sha256::new();
        h.update(b"node-a#2001:db8::1");
        assert_eq!(score("node-a", ip6), h.finish());
    }

    #[test]
    fn empty_candidates_elect_nobody() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(elect(ip, []), None);
    }

    #[test]
    fn single_candidate_always_wins() {
        for i in 0..100u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, i));
            assert_eq!(elect(ip, ["only"]), Some("only"));
        }
    }

    #[test]
    fn known_winners_are_pinned() {
        // Pins the algorithm (cross-checked with Python's hashlib): a change
        // here would move IPs between nodes during an upgrade.
        let nodes = ["node-a", "node-b", "node-c"];
        for (ip, winner) in [
            ("192.0.2.1", "node-c"),
            ("192.0.2.2", "node-b"),
            ("192.0.2.3", "node-c"),
            ("2001:db8::1", "node-b"),
            ("fd00:200::50", "node-c"),
        ] {
            let ip: IpAddr = ip.parse().expect("test IP");
            assert_eq!(elect(ip, nodes), Some(winner), "{ip}");
        }
    }

    fn ips(n: u32) -> impl Iterator<Item = IpAddr> {
        (0..n).map(|i| IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i)))
    }

    fn node_names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    fn assign(nodes: &[String], ips: impl Iterator<Item = IpAddr>) -> BTreeMap<IpAddr, String> {
        ips.filter_map(|ip| elect(ip, nodes.iter().map(String::as_str)).map(|n| (ip, n.to_owned())))
            .collect()
    }

    #[test]
    fn spread_is_even_within_ten_percent() {
        for n in [3, 5, 10] {
            let nodes = node_names(n);
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for node in assign(&nodes, ips(10_000)).into_values() {
                *counts.entry(node).or_default() += 1;
            }
            assert_eq!(counts.len(), n);
            let even = 10_000.0 / n as f64;
            for (node, count) in counts {
                let deviation = (count as f64 - even).abs() / even;
                assert!(
                    deviation <= 0.10,
                    "{n} nodes: {node} got {count}, even {even}"
                );
            }
        }
        // IPv6 too.
        let nodes = node_names(5);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..10_000u128 {
            let ip = IpAddr::V6(Ipv6Addr::from(
                0xfd00_0200_0000_0000_0000_0000_0000_0000 + i,
            ));
            if let Some(node) = elect(ip, nodes.iter().map(String::as_str)) {
                *counts.entry(node.to_owned()).or_default() += 1;
            }
        }
        for count in counts.values() {
            assert!((1800..=2200).contains(count), "{counts:?}");
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_ips() {
        let nodes = node_names(5);
        let before = assign(&nodes, ips(10_000));
        for removed in &nodes {
            let rest: Vec<String> = nodes.iter().filter(|n| *n != removed).cloned().collect();
            let after = assign(&rest, ips(10_000));
            for (ip, owner) in &before {
                if owner != removed {
                    assert_eq!(&after[ip], owner, "{ip} moved off a surviving node");
                } else {
                    assert_ne!(&after[ip], removed);
                }
            }
        }
    }

    #[test]
    fn adding_a_node_moves_only_ips_to_it() {
        let nodes = node_names(4);
        let before = assign(&nodes, ips(10_000));
        let mut more = nodes.clone();
        more.push("worker-new".to_owned());
        let after = assign(&more, ips(10_000));
        let mut moved = 0;
        for (ip, owner) in &before {
            if &after[ip] != owner {
                assert_eq!(after[ip], "worker-new");
                moved += 1;
            }
        }
        // About a fifth should move to the newcomer.
        assert!((1800..=2200).contains(&moved), "moved {moved}");
    }

    proptest! {
        #[test]
        fn order_and_duplicates_do_not_matter(
            names in proptest::collection::vec("[a-z0-9-]{1,12}", 1..8),
            ip in any::<u32>(),
            rotate in any::<usize>(),
        ) {
            let ip = IpAddr::V4(Ipv4Addr::from(ip));
            let winner = elect(ip, names.iter().map(String::as_str)).map(str::to_owned);
            let mut shuffled = names.clone();
            let len = shuffled.len();
            shuffled.rotate_left(rotate % len);
            shuffled.reverse();
            shuffled.extend(names.iter().cloned());
            prop_assert_eq!(elect(ip, shuffled.iter().map(String::as_str)).map(str::to_owned), winner.clone());
            let winner = winner.unwrap_or_default();
            prop_assert!(names.contains(&winner));
            prop_assert_eq!(elect(ip, names.iter().map(String::as_str)), Some(winner.as_str()));
        }
    }
}
