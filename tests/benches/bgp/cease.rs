//! A speaker's Cease as it reaches a router.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrolb_tests::bgp::Router;

/// A BGP NOTIFICATION from `from` captured on a router's interface (tcpdump, kernel
/// timestamps): when the Cease reached the router, as opposed to when it acted on it.
pub struct CeaseCapture {
    child: Child,
}

impl CeaseCapture {
    pub fn start(router: Router, from: &str) -> CeaseCapture {
        // BGP type (octet 18 of the TCP payload) 3 = NOTIFICATION.
        let filter = format!("tcp port 179 and src host {from} and tcp[((tcp[12]>>4)*4)+18] == 3");
        let child = Command::new("ip")
            .args([
                "netns", "exec", router.ns, "tcpdump", "-l", "-n", "-tt", "-c", "1", "-i", "eth0",
            ])
            .arg(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump starts");
        CeaseCapture { child }
    }

    /// How long after `since` (wall clock) the NOTIFICATION was captured.
    pub fn after(self, since: SystemTime, timeout: Duration) -> Option<Duration> {
        let mut child = self.child;
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().ok()?;
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .to_string();
        let ts: f64 = line.split_whitespace().next()?.parse().ok()?;
        let since = since.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
        Some(Duration::from_secs_f64((ts - since).max(0.0)))
    }
}
