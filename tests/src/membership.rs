//! Speaker-membership fixtures: a hostile host on the node segment (the lab's flb-client) that
//! captures, replays and forges membership datagrams, and what the speakers show for it (logs,
//! rejection metric, ARP answers).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use ferrolb_speaker::membership::MemberId;
use ferrolb_speaker::membership::keys::KeyRing;
use ferrolb_speaker::membership::seal;
use foca::{Codec, Header, Member, Message, PostcardCodec, State};

use crate::{NODES, lab, repo, speaker_metrics};

/// The membership port the lab's speakers use.
pub const PORT: u16 = 7946;

/// A node's membership address (its InternalIP on segment 0).
pub fn node_addr(node: &str) -> SocketAddr {
    let n: u8 = node
        .trim_start_matches("flb-node")
        .parse()
        .expect("flb-nodeN");
    SocketAddr::from(([198, 18, 0, 10 + n], PORT))
}

/// The lab speakers' key file (hack/lib/ferrolb.sh writes it once per lab).
pub fn keys_file() -> PathBuf {
    repo().join(".lab/memberlist-keys")
}

/// The wall clock in µs.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A foca message from `src` to `dst` carrying `members`, unframed.
pub fn foca_payload(
    src: &MemberId,
    dst: &MemberId,
    message: Message<MemberId>,
    members: &[Member<MemberId>],
) -> Vec<u8> {
    let mut out = Vec::new();
    let header = Header {
        src: src.clone(),
        src_incarnation: 0,
        dst: dst.clone(),
        message,
    };
    PostcardCodec
        .encode_header(&header, &mut out)
        .expect("encode header");
    if !members.is_empty() {
        out.extend_from_slice(&u16::try_from(members.len()).expect("few").to_be_bytes());
        for m in members {
            PostcardCodec
                .encode_member(m, &mut out)
                .expect("encode member");
        }
    }
    out
}

/// The pre-authentication format (and `--insecure-membership`'s): "FLBm", 1, payload.
pub fn plain(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    seal::plain(payload, &mut out);
    out.to_vec()
}

/// Well-formed and sealed, but with a key the speakers do not hold.
pub fn sealed_with_wrong_key(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let ring = KeyRing::new(&[[0x66_u8; 32]]).expect("key");
    let mut out = BytesMut::new();
    seal::seal(&ring, now_micros(), from, to, payload, &mut out);
    out.to_vec()
}

/// A member down with an identity counter `bump` and the highest incarnation: what issue 9's
/// forged "node X is down" said.
pub fn down(node: &str, bump: u64) -> Member<MemberId> {
    Member::new(
        MemberId::new(node, node_addr(node), bump),
        u16::MAX,
        State::Down,
    )
}

/// One datagram for the client to send: from `src` (None: the client's own address; Some: a
/// spoofed source) to `dst`.
pub struct Datagram {
    pub src: Option<SocketAddr>,
    pub dst: SocketAddr,
    pub data: Vec<u8>,
}

impl Datagram {
    /// From the client's own address.
    pub fn from_client(dst: SocketAddr, data: Vec<u8>) -> Datagram {
        Datagram {
            src: None,
            dst,
            data,
        }
    }

    /// With the spoofed source `src`.
    pub fn spoofed(src: SocketAddr, dst: SocketAddr, data: Vec<u8>) -> Datagram {
        Datagram {
            src: Some(src),
            dst,
            data,
        }
    }
}

const SENDER: &str = r#"
import socket, struct, sys
plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
n = 0
for line in sys.stdin:
    src, dst, data = line.split()
    data = bytes.fromhex(data)
    dip, dport = dst.rsplit(":", 1)
    if src == "-":
        plain.sendto(data, (dip, int(dport)))
    else:
        sip, sport = src.rsplit(":", 1)
        udp = struct.pack("!HHHH", int(sport), int(dport), 8 + len(data), 0) + data
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton(sip), socket.inet_aton(dip))
        raw.sendto(ip + udp, (dip, 0))
    n += 1
print(n)
"#;

/// Sends datagrams from flb-client (a host on the node segment that is not a node); spoofed
/// sources go out on a raw socket. Returns how many were sent.
pub fn send_from_client(datagrams: &[Datagram]) -> usize {
    let mut child = Command::new("ip")
        .args(["netns", "exec", "flb-client", "python3", "-c", SENDER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 in flb-client");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for d in datagrams {
            let src = d.src.map_or_else(|| "-".to_string(), |s| s.to_string());
            let hex: String = d.data.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(stdin, "{src} {} {hex}", d.dst).expect("write");
        }
    }
    let out = child.wait_with_output().expect("sender runs");
    assert!(
        out.status.success(),
        "sender: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count")
}

const CAPTURE: &str = r#"
import socket, sys, time
src, dst, secs, most = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.settimeout(0.1)
end = time.time() + secs
n = 0
while time.time() < end and n < most:
    try:
        frame, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[0] != "eth0":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17 or socket.inet_ntoa(ip[12:16]) != src or socket.inet_ntoa(ip[16:20]) != dst:
        continue
    udp = ip[ihl:]
    if int.from_bytes(udp[2:4], "big") != 7946:
        continue
    print(udp[8:].hex())
    n += 1
"#;

/// Captures up to `most` membership datagrams `from` → `to` on `to`'s eth0 for `secs`.
pub fn capture(from: &str, to: &str, secs: f64, most: usize) -> Vec<Vec<u8>> {
    let (f, t) = (
        node_addr(from).ip().to_string(),
        node_addr(to).ip().to_string(),
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            to,
            "python3",
            "-c",
            CAPTURE,
            &f,
            &t,
            &secs.to_string(),
            &most.to_string(),
        ])
        .output()
        .expect("capture runs");
    assert!(
        out.status.success(),
        "capture: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

/// `ferrolb_membership_rejected_total` per reason, per node (in NODES order).
pub fn rejected_by_node() -> Vec<BTreeMap<String, u64>> {
    NODES
        .iter()
        .map(|n| {
            speaker_metrics(n)
                .lines()
                .filter_map(|l| l.strip_prefix("ferrolb_membership_rejected_total{reason=\""))
                .filter_map(|l| {
                    let (reason, rest) = l.split_once("\"}")?;
                    Some((reason.to_string(), rest.trim().parse().ok()?))
                })
                .collect()
        })
        .collect()
}

/// Where each speaker's log stands, to read what it logged since.
pub struct LogMark(Vec<(PathBuf, u64)>);

impl LogMark {
    pub fn now() -> LogMark {
        LogMark(
            NODES
                .iter()
                .map(|n| {
                    let p = repo().join(format!(".lab/logs/speaker-{n}.log"));
                    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    (p, len)
                })
                .collect(),
        )
    }

    /// Lines each speaker logged since the mark that contain `needle`, by node.
    pub fn lines_with(&self, needle: &str) -> BTreeMap<&'static str, Vec<String>> {
        NODES
            .iter()
            .zip(&self.0)
            .map(|(n, (p, from))| {
                let text = std::fs::read(p).unwrap_or_default();
                let start = usize::try_from(*from).unwrap_or(0).min(text.len());
                let lines = String::from_utf8_lossy(&text[start..])
                    .lines()
                    .filter(|l| l.contains(needle))
                    .map(str::to_string)
                    .collect();
                (*n, lines)
            })
            .collect()
    }
}

/// Each speaker's current membership identity, from its log (`starting membership id=...`, or a
/// later renewal): what an attacker who decodes captured plain datagrams, or guesses start times,
/// knows. Forged datagrams that name the receiver's real identity are the ones foca would act on.
pub fn identities() -> BTreeMap<&'static str, MemberId> {
    NODES
        .iter()
        .map(|n| {
            let log = std::fs::read_to_string(repo().join(format!(".lab/logs/speaker-{n}.log")))
                .unwrap_or_default();
            let id = log
                .lines()
                .filter_map(|l| {
                    ["starting membership id=", "rejoined as_=", " new="]
                        .iter()
                        .find_map(|key| l.split_once(key).map(|(_, rest)| rest))
                })
                .filter_map(parse_member_id)
                .rfind(|id| id.node() == *n)
                .unwrap_or_else(|| panic!("no membership identity in {n}'s log"));
            (*n, id)
        })
        .collect()
}

/// `name@ip:port#bump` (MemberId's Display).
fn parse_member_id(text: &str) -> Option<MemberId> {
    let word = text.split_whitespace().next()?;
    let (name, rest) = word.split_once('@')?;
    let (addr, bump) = rest.split_once('#')?;
    Some(MemberId::new(name, addr.parse().ok()?, bump.parse().ok()?))
}

/// Every MAC that answers ARP for `vip` on the client's eth0 within a few probes.
pub fn arp_answerers(vip: &str) -> BTreeSet<String> {
    let r = lab().exec("flb-client", &["arping", "-c3", "-w3", "-I", "eth0", vip]);
    r.stdout
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
        .filter(|w| w.len() == 17 && w.matches(':').count() == 5)
        .map(str::to_string)
        .collect()
}

/// Restores the lab's key file when dropped: a test that rotates keys and fails midway leaves
/// every key it used accepted, with the key that signs last still signing (so speakers that
/// re-read the file at different times, within 5 s, never stop understanding each other).
pub struct KeysGuard {
    original: String,
    added: Vec<String>,
    signing: std::cell::RefCell<String>,
}

impl KeysGuard {
    pub fn new() -> KeysGuard {
        let original = std::fs::read_to_string(keys_file()).expect("lab key file");
        KeysGuard {
            signing: std::cell::RefCell::new(original.lines().next().unwrap_or("").to_string()),
            original,
            added: Vec::new(),
        }
    }

    pub fn original(&self) -> &str {
        self.original.trim()
    }

    /// A fresh random key line (base64 of 32 bytes).
    pub fn fresh_key(&mut self) -> String {
        let out = Command::new("sh")
            .args(["-c", "head -c 32 /dev/urandom | base64 -w0"])
            .output()
            .expect("base64");
        let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(key.len(), 44, "{key}");
        self.added.push(key.clone());
        key
    }

    /// Writes the key file (atomically, like the kubelet's symlink swap).
    pub fn write(&self, keys: &[&str]) {
        if let Some(first) = keys.first() {
            *self.signing.borrow_mut() = (*first).to_string();
        }
        let tmp = keys_file().with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", keys.join("\n"))).expect("write keys");
        std::fs::rename(&tmp, keys_file()).expect("rename keys");
    }

    /// Keeps the current file: the rotation finished.
    pub fn keep(mut self) {
        self.added.clear();
        self.original.clear();
    }
}

impl Default for KeysGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for KeysGuard {
    fn drop(&mut self) {
        if self.original.is_empty() {
            return;
        }
        let signing = self.signing.borrow().clone();
        let mut keys = vec![signing.as_str()];
        for k in std::iter::once(self.original.trim()).chain(self.added.iter().map(String::as_str))
        {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        self.write(&keys);
    }
}

/// Waits `d` while checking, every ~300 ms, that `check` holds; panics naming the first failure.
pub fn hold_for(d: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if let Err(e) = check() {
            panic!("{what}: {e}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
