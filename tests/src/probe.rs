//! The client's view for the benchmarks: an HTTP GET of agnhost's `/hostname` from the lab's
//! client host every 10 ms, each on a new connection (a new source port, so ECMP spreads them),
//! recorded with when it started and which pod answered.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a probe starts.
pub const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How long a probe may take in all before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

unsafe extern "C" {
    /// setns(2): moves the calling thread into another network namespace.
    fn setns(fd: i32, nstype: i32) -> i32;
}
const CLONE_NEWNET: i32 = 0x4000_0000;

/// One GET of `/hostname`: when it started and the pod that answered (None: it failed).
#[derive(Clone, Debug)]
pub struct Probe {
    pub at: Instant,
    pub answer: Option<String>,
}

/// Starts a GET every PROBE_EVERY from flb-client's network namespace (each on a thread of its
/// own, so a request that hangs does not delay the next), until finished.
pub struct Prober {
    stop: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<Probe>>>,
    scheduler: Option<JoinHandle<()>>,
}

/// Moves the calling thread (and threads it starts) into a lab host's network namespace.
fn enter_netns(host: &str) {
    let f = std::fs::File::open(format!("/run/netns/{host}")).expect("the lab host's netns");
    // SAFETY: setns(2) on a descriptor we own; it affects this thread only.
    let rc = unsafe { setns(f.as_raw_fd(), CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns into {host}");
}

/// GET /hostname over a new connection: agnhost's answer (the pod's name), None on any failure
/// or after `timeout` in all.
fn get_hostname(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    let left = deadline.checked_duration_since(Instant::now())?;
    s.set_write_timeout(Some(left)).ok()?;
    s.write_all(b"GET /hostname HTTP/1.0\r\nHost: probe\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        s.set_read_timeout(Some(left)).ok()?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.trim().to_string())
}

impl Prober {
    /// Probes `ip`:80.
    pub fn start(ip: &str) -> Prober {
        let addr = SocketAddr::new(ip.parse::<IpAddr>().expect("an IP"), 80);
        let stop = Arc::new(AtomicBool::new(false));
        let probes: Arc<Mutex<Vec<Probe>>> = Arc::default();
        let (s, p) = (stop.clone(), probes.clone());
        let scheduler = std::thread::spawn(move || {
            enter_netns("flb-client");
            let mut inflight: Vec<JoinHandle<()>> = Vec::new();
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let p = p.clone();
                inflight.push(std::thread::spawn(move || {
                    let at = Instant::now();
                    let answer = get_hostname(addr, PROBE_TIMEOUT);
                    p.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Probe { at, answer });
                }));
                inflight.retain(|h| !h.is_finished());
                next += PROBE_EVERY;
                match next.checked_duration_since(Instant::now()) {
                    Some(d) => std::thread::sleep(d),
                    None => next = Instant::now(),
                }
            }
            for h in inflight {
                let _ = h.join();
            }
        });
        Prober {
            stop,
            probes,
            scheduler: Some(scheduler),
        }
    }

    /// The probes that have ended so far, by start time.
    pub fn snapshot(&self) -> Vec<Probe> {
        let mut v = self
            .probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|p| p.at);
        v
    }

    /// Stops probing; every probe, by start time.
    pub fn finish(mut self) -> Vec<Probe> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.scheduler.take() {
            let _ = h.join();
        }
        self.snapshot()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
