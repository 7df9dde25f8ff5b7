//! Client-side probe for the L2 failover benchmark, run inside the client host:
//! `l2-probe VIP DURATION_MS INTERVAL_MS` connects to VIP:80 every INTERVAL_MS (each attempt
//! times out after INTERVAL_MS) and prints `<unix time in µs> <node or ->` per attempt.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(vip), Some(dur), Some(step)) = (
        args.get(1).and_then(|a| a.parse::<IpAddr>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
        args.get(3).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: l2-probe VIP DURATION_MS INTERVAL_MS");
        std::process::exit(2);
    };
    let step = Duration::from_millis(step.max(1));
    let end = Instant::now() + Duration::from_millis(dur);
    let addr = SocketAddr::new(vip, 80);
    while Instant::now() < end {
        let started = Instant::now();
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let answer = TcpStream::connect_timeout(&addr, step)
            .ok()
            .and_then(|mut s| {
                s.set_read_timeout(Some(step)).ok()?;
                let mut buf = String::new();
                s.read_to_string(&mut buf).ok()?;
                Some(buf.trim().to_string())
            })
            .filter(|s| !s.is_empty());
        println!("{at} {}", answer.as_deref().unwrap_or("-"));
        if let Some(rest) = step.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}
