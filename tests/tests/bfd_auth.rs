//! BFD authentication in the lab (issue 9): a host on the node segment that is not a node can
//! take a BGP session down with one spoofed BFD Down (the router's source address, TTL 255,
//! the right discriminators) unless the session is authenticated. Against BIRD, which
//! supports RFC 5880 keyed SHA1 (FRR 8.4's bfdd has no authentication).
//!
//! flb-client (198.18.0.100, on the node segment) spoofs; it learns the discriminators the way
//! an attacker on the path would, from a packet BIRD sends to the node (captured here inside
//! the node's namespace). The flap detector is BIRD's own "since" time of its BGP protocol and
//! BFD session with node1: a session that went down and came back within a second still moves
//! them.
//!
//! Run: `cargo test -p ferrolb-tests --test bfd_auth -- --test-threads=1` (lab up).

use std::process::Command;
use std::time::{Duration, Instant};

use ferrolb_tests::bgp::{BIRD, Objects, RouterConfig, node_addr, wait_shown_established};
use ferrolb_tests::{serial, speaker_metrics, unique, wait_for};

const SETTLE: Duration = Duration::from_secs(40);
const NODE: &str = "flb-node1";
const SPOOFER: &str = "flb-client";
const KEY: &str = "flb-lab-bfd-key";
/// Spoofed packets of each kind.
const COUNT: u32 = 20;

/// Captures one Up packet BIRD sends to node1's BFD port (inside node1's namespace) and prints
/// its My and Your Discriminator and whether it carries authentication.
const SNIFF: &str = r#"
import socket, struct, sys, time
src = socket.inet_aton(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(("eth0", 0))
s.settimeout(1)
end = time.time() + 10
while time.time() < end:
    try:
        f = s.recv(2048)
    except socket.timeout:
        continue
    ip = f[14:]
    if len(ip) < 20 or ip[9] != 17 or ip[12:16] != src:
        continue
    udp = ip[(ip[0] & 15) * 4:]
    if struct.unpack(">H", udp[2:4])[0] != 3784:
        continue
    b = udp[8:]
    if len(b) >= 24 and b[1] >> 6 == 3:
        my, your = struct.unpack(">II", b[4:12])
        print(my, your, int(b[1] & 4 != 0))
        sys.exit(0)
sys.exit(1)
"#;

/// Sends BFD Down control packets from `src` to `dst`:3784 with TTL `ttl` through a raw socket
/// (hand-built IPv4 + UDP), so the source address is the router's. `mode`: `plain` (no
/// authentication) or `forged` (a keyed SHA1 section with key ID 1, the next sequence numbers
/// and a digest made with a guessed key).
const SPOOF: &str = r#"
import hashlib, socket, struct, sys
src, dst, my, your, mode, count, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(count):
    auth = mode != "plain"
    length = 52 if auth else 24
    flags = (1 << 6) | (0x04 if auth else 0)  # state Down
    bfd = bytearray(struct.pack(">BBBBIIIII", (1 << 5) | 3, flags, 3, length, my, your, 300000, 300000, 0))
    if auth:
        bfd += struct.pack(">BBBBI", 4, 28, 1, 0, 1000 + i) + b"guess".ljust(20, b"\0")
        bfd[32:52] = hashlib.sha1(bytes(bfd)).digest()
    udp = struct.pack(">HHHH", 49152 + i, 3784, 8 + len(bfd), 0) + bytes(bfd)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x4242 + i, 0, ttl, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
"#;

fn python_in(ns: &str, script: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", script])
        .args(args)
        .output()
        .expect("python3 runs");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// BIRD's "since" times of its BGP protocol and BFD session with node1 over IPv4, and the BFD
/// state, as printed by `show protocols` / `show bfd sessions`.
#[derive(Debug, Clone)]
struct Since {
    bgp: String,
    bfd_state: String,
    bfd: String,
}

/// BIRD keeps these times on its monotonic clock and converts them to wall-clock time when it
/// prints them, so one instant can print a millisecond or so apart (CI saw .396 then .397). A
/// real flap (Down, then a new BFD session and a new BGP session) moves them by seconds.
const PRINT_JITTER_MS: i64 = 250;

/// Milliseconds since midnight of BIRD's `hh:mm:ss.mmm`.
fn clock_ms(t: &str) -> Option<i64> {
    let (hms, frac) = t.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let frac: i64 = frac.parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1000 + frac)
}

/// Whether two printed times are different instants (beyond the print jitter).
fn other_instant(a: &str, b: &str) -> bool {
    match (clock_ms(a), clock_ms(b)) {
        (Some(a), Some(b)) => {
            let day = 86_400_000;
            let d = (a - b).rem_euclid(day);
            d.min(day - d) > PRINT_JITTER_MS
        }
        _ => a != b,
    }
}

impl Since {
    fn now() -> Self {
        let bgp = BIRD.cli("show protocols flb_node1_v4").stdout;
        let bgp = bgp
            .lines()
            .find(|l| l.starts_with("flb_node1_v4"))
            .and_then(|l| l.split_whitespace().nth(4))
            .unwrap_or_default()
            .to_string();
        let addr = node_addr(NODE, false);
        let bfd = BIRD.cli("show bfd sessions").stdout;
        // "198.18.0.11 eth0 Up 23:23:32.266 0.300 0.900"
        let bfd: Vec<String> = bfd
            .lines()
            .find(|l| l.split_whitespace().next() == Some(addr.as_str()))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        Since {
            bgp,
            bfd_state: bfd.get(2).cloned().unwrap_or_default(),
            bfd: bfd.get(3).cloned().unwrap_or_default(),
        }
    }

    /// BIRD's BGP session with node1 went down (and perhaps came back) since `before`.
    fn bgp_moved_from(&self, before: &Since) -> bool {
        other_instant(&self.bgp, &before.bgp)
    }

    /// The BGP or the BFD session went down (and perhaps came back) since `before`.
    fn moved_from(&self, before: &Since) -> bool {
        self.bgp_moved_from(before)
            || self.bfd_state != before.bfd_state
            || other_instant(&self.bfd, &before.bfd)
    }
}

#[test]
fn print_jitter_is_not_a_flap() {
    let at = |bgp: &str, bfd: &str| Since {
        bgp: bgp.into(),
        bfd_state: "Up".into(),
        bfd: bfd.into(),
    };
    let before = at("23:23:33.396", "23:23:32.266");
    assert!(!at("23:23:33.397", "23:23:32.265").moved_from(&before));
    assert!(at("23:23:36.120", "23:23:32.266").moved_from(&before));
    assert!(at("23:23:33.396", "23:23:35.001").moved_from(&before));
    assert!(!at("00:00:00.001", "x").moved_from(&at("23:59:59.999", "x")));
    let mut down = before.clone();
    down.bfd_state = "Down".into();
    assert!(down.moved_from(&before));
}

/// `ferrolb_bfd_packets_dropped_total` on node1 for BIRD's address and `reason`.
fn dropped(reason: &str) -> f64 {
    let want = format!(
        "ferrolb_bfd_packets_dropped_total{{peer=\"{}\",reason=\"{reason}\"}}",
        BIRD.v4
    );
    speaker_metrics(NODE)
        .lines()
        .find_map(|l| l.strip_prefix(&want).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// (BIRD's discriminator, the speaker's, whether BIRD authenticates) from a captured packet.
fn discriminators() -> (String, String, bool) {
    let (ok, out) = python_in(NODE, SNIFF, &[BIRD.v4]);
    assert!(ok, "no BFD Up packet from BIRD seen on {NODE}: {out}");
    let w: Vec<&str> = out.split_whitespace().collect();
    (w[0].to_string(), w[1].to_string(), w[2] == "1")
}

fn spoof(my: &str, your: &str, mode: &str) {
    spoof_ttl(my, your, mode, 255);
}

fn spoof_ttl(my: &str, your: &str, mode: &str, ttl: u8) {
    let dst = node_addr(NODE, false);
    let (n, ttl) = (COUNT.to_string(), ttl.to_string());
    let (ok, out) = python_in(SPOOFER, SPOOF, &[BIRD.v4, &dst, my, your, mode, &n, &ttl]);
    assert!(ok, "spoofing from {SPOOFER}: {out}");
}

/// Waits until BIRD's BFD session with node1 is Up and the speaker shows the peer Established
/// with BFD Up on every node.
fn wait_up(peer: &str) -> Duration {
    let t0 = Instant::now();
    let addr = node_addr(NODE, false);
    wait_for(&format!("BIRD BFD Up with {addr}"), SETTLE, || {
        BIRD.bfd_up(&addr).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {}", BIRD.cli("show bfd sessions").stdout));
    let took = t0.elapsed();
    // BIRD's side too: a session still coming back (after a profile change) would move the
    // "since" times later and look like a flap.
    wait_for(&format!("BIRD BGP Established with {addr}"), SETTLE, || {
        BIRD.established(&addr).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    wait_shown_established(peer, SETTLE, |e| e.bfd_state.as_deref() == Some("Up"));
    // Let the Poll sequences that follow Up settle before measuring anything.
    std::thread::sleep(Duration::from_secs(2));
    took
}

#[test]
fn spoofed_bfd_down_is_ignored_with_authentication() {
    // Both tests reconfigure the routers and peer node1 with BIRD.
    let _s = serial();
    let p = unique("bfd-auth");
    let mut o = Objects::new();
    let t_config = Instant::now();
    let routers = RouterConfig::set(&[
        ("LAB_BFD", "1"),
        ("LAB_BFD_AUTH", "keyed-sha1"),
        ("LAB_BFD_PASSWORD", KEY),
        ("LAB_BFD_KEY_ID", "1"),
    ]);
    o.secret(&format!("{p}-key"), KEY);
    o.apply(
        "BFDProfile",
        &p,
        &format!(
            "{{receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, \
             authentication: {{type: keyed-sha1, keyID: 1, passwordSecret: {{name: {p}-key}}}}}}"
        ),
    );
    let t_applied = Instant::now();
    o.peer(&p, BIRD, false, &format!("bfdProfile: {p}"));
    let took = wait_up(&p);
    println!(
        "keyed SHA1: BIRD BFD Up with {NODE} {took:?} after the BGPPeer was applied \
         (routers reconfigured {:?} before)",
        t_applied.duration_since(t_config)
    );
    let (bird_disc, our_disc, authenticated) = discriminators();
    assert!(authenticated, "BIRD's packets carry no authentication");

    // The attack: Downs without authentication, then with a forged digest.
    let before = Since::now();
    let (missing0, digest0) = (dropped("auth_missing"), dropped("auth_digest"));
    spoof(&bird_disc, &our_disc, "plain");
    spoof(&bird_disc, &our_disc, "forged");
    std::thread::sleep(Duration::from_secs(3));
    let after = Since::now();
    assert!(
        !after.moved_from(&before),
        "BIRD saw the BGP session or BFD session go down and back: {before:?} -> {after:?}"
    );
    assert!(BIRD.bfd_up(&node_addr(NODE, false)));
    assert!(BIRD.established(&node_addr(NODE, false)));
    let shown = wait_shown_established(&p, SETTLE, |e| e.bfd_state.as_deref() == Some("Up"));
    println!("after the spoof: {shown:?}");
    let (missing, digest) = (
        dropped("auth_missing") - missing0,
        dropped("auth_digest") - digest0,
    );
    println!("dropped: {missing} without authentication, {digest} with a forged digest");
    assert_eq!(missing, f64::from(COUNT));
    assert_eq!(digest, f64::from(COUNT));

    // Control: the same attack on an unauthenticated session works, so the quiet above is the
    // authentication's doing (and this detector sees a flap).
    o.patch_spec("BFDProfile", &p, "{\"authentication\": null}");
    drop(routers);
    let _routers = RouterConfig::set(&[("LAB_BFD", "1")]);
    wait_up(&p);
    let (bird_disc, our_disc, authenticated) = discriminators();
    assert!(!authenticated);
    let before = Since::now();
    spoof(&bird_disc, &our_disc, "plain");
    let flapped = wait_for(
        "the unauthenticated session to fall to the spoofed Down",
        Duration::from_secs(10),
        || Since::now().bgp_moved_from(&before).then_some(()),
    );
    assert!(
        flapped.is_ok(),
        "the spoof did not take the unauthenticated session down: the check above proves nothing"
    );
    wait_up(&p);
}

/// `minimumTtl` is honoured (issue 9: it was documented, and only 255 was ever accepted). The
/// flb-client sends the Downs, so the only thing that differs between them is the TTL.
#[test]
fn minimum_ttl_is_enforced() {
    let _s = serial();
    let p = unique("bfd-ttl");
    let mut o = Objects::new();
    let _routers = RouterConfig::set(&[("LAB_BFD", "1")]);
    o.apply(
        "BFDProfile",
        &p,
        "{receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}",
    );
    o.peer(&p, BIRD, false, &format!("bfdProfile: {p}"));
    wait_up(&p);

    // Unset: 255 only (RFC 5881). A Down with TTL 254 is dropped and counted.
    let (bird_disc, our_disc, _) = discriminators();
    let before = Since::now();
    let ttl0 = dropped("ttl");
    spoof_ttl(&bird_disc, &our_disc, "plain", 254);
    std::thread::sleep(Duration::from_secs(3));
    let after = Since::now();
    assert!(
        !after.moved_from(&before),
        "a TTL 254 Down was accepted: {before:?} -> {after:?}"
    );
    assert_eq!(dropped("ttl") - ttl0, f64::from(COUNT));

    // minimumTtl: 254 (the session restarts with the new setting): 253 is dropped...
    let restarted_from = Since::now();
    o.patch_spec("BFDProfile", &p, "{\"minimumTtl\": 254}");
    // A profile change restarts the peer's session; wait for that (or 5 s) before measuring.
    let _ = wait_for("the session to restart", Duration::from_secs(5), || {
        Since::now().bgp_moved_from(&restarted_from).then_some(())
    });
    wait_up(&p);
    let (bird_disc, our_disc, _) = discriminators();
    let before = Since::now();
    let ttl0 = dropped("ttl");
    spoof_ttl(&bird_disc, &our_disc, "plain", 253);
    std::thread::sleep(Duration::from_secs(3));
    let after = Since::now();
    assert!(
        !after.moved_from(&before),
        "a TTL 253 Down was accepted: {before:?} -> {after:?}"
    );
    assert_eq!(dropped("ttl") - ttl0, f64::from(COUNT));
    // ...and 254 is accepted: the same Down now takes the (unauthenticated) session down.
    spoof_ttl(&bird_disc, &our_disc, "plain", 254);
    wait_for(
        "the TTL 254 Down to be accepted with minimumTtl 254",
        Duration::from_secs(10),
        || Since::now().bgp_moved_from(&before).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}: minimumTtl 254 not applied"));
    wait_up(&p);
}
