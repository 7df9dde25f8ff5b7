//! Real-router check against FRR (bgpd) and BIRD 2 in throwaway network namespaces.
//!
//! Needs root, `ip`, FRR and BIRD. Run by hand:
//! `cargo test -p ferrolb-speaker --lib bgp::driver::tests::lab -- --ignored --nocapture`
//!
//! Topology (all namespaces `t-bgp-*`, both veth ends created inside namespaces):
//! speaker (AS 64512) ── vfrr ── FRR (AS 64513): 198.18.1.0/24, fd00:1::/64
//! speaker            ── vbird ── BIRD (AS 64514): 198.18.2.0/24, fd00:2::/64
//! One IPv4 session (with TCP MD5) and one IPv6 session per router.

use super::*;
use crate::bgp::fsm::PeerAsn;
use crate::bgp::prefix::{Family, NextHop, Prefix};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tokio::time::Instant;

const NS_SPK: &str = "t-bgp-spk";
const NS_FRR: &str = "t-bgp-frr";
const NS_BIRD: &str = "t-bgp-bird";
const MD5: &str = "flb-secret";

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_ok(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

/// Everything the lab created; dropping it tears it all down, even after a failed assertion.
struct Lab {
    dir: PathBuf,
    children: Vec<Child>,
    namespaces: Vec<&'static str>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn setup() -> Lab {
    let dir = std::env::temp_dir().join(format!("t-bgp-lab-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        dir: dir.clone(),
        children: Vec::new(),
        namespaces: Vec::new(),
    };
    for ns in [NS_SPK, NS_FRR, NS_BIRD] {
        // Leftovers of an interrupted run; usually absent.
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", ns]);
        lab.namespaces.push(ns);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        for k in ["all", "default"] {
            // No DAD (addresses usable at once); keep IPv6 addresses across link flaps.
            for opt in ["accept_dad=0", "keep_addr_on_down=1"] {
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.{opt}"),
                ]);
            }
        }
    }
    for (ns, a, b, n) in [
        (NS_FRR, "vfrr0", "vfrr1", 1),
        (NS_BIRD, "vbird0", "vbird1", 2),
    ] {
        sh(&[
            "ip", "-n", NS_SPK, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns,
        ]);
        for (side, dev, host) in [(NS_SPK, a, 1), (ns, b, 2)] {
            let (v4, v6) = (
                format!("198.18.{n}.{host}/24"),
                format!("fd00:{n}::{host}/64"),
            );
            sh(&["ip", "-n", side, "addr", "add", &v4, "dev", dev]);
            sh(&["ip", "-n", side, "addr", "add", &v6, "dev", dev, "nodad"]);
            sh(&["ip", "-n", side, "link", "set", dev, "up"]);
        }
    }

    // FRR: standalone bgpd, passive, MD5 on the IPv4 session.
    let frr_dir = dir.join("frr");
    fs::create_dir_all(&frr_dir).unwrap();
    let frr_conf = frr_dir.join("bgpd.conf");
    fs::write(
        &frr_conf,
        format!(
            "hostname t-bgp-frr
log file {log}
router bgp 64513
 bgp router-id 198.18.1.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor 198.18.1.1 remote-as 64512
 neighbor 198.18.1.1 passive
 neighbor 198.18.1.1 password {MD5}
 neighbor fd00:1::1 remote-as 64512
 neighbor fd00:1::1 passive
 address-family ipv4 unicast
  neighbor 198.18.1.1 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00:1::1 activate
 exit-address-family
",
            log = frr_dir.join("bgpd.log").display()
        ),
    )
    .unwrap();
    sh(&["chown", "-R", "frr:frr", frr_dir.to_str().unwrap()]);
    let frr = Command::new("ip")
        .args(["netns", "exec", NS_FRR, "/usr/lib/frr/bgpd", "-Z", "-f"])
        .arg(&frr_conf)
        .arg("-i")
        .arg(frr_dir.join("bgpd.pid"))
        .arg("--vty_socket")
        .arg(&frr_dir)
        .args(["-P", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(frr);

    // BIRD: passive, MD5 on the IPv4 session.
    let bird_conf = dir.join("bird.conf");
    fs::write(
        &bird_conf,
        format!(
            r#"router id 198.18.2.2;
log "{log}" all;
protocol device {{ }}
protocol bgp spk4 {{
  local 198.18.2.2 as 64514;
  neighbor 198.18.2.1 as 64512;
  passive on;
  password "{MD5}";
  ipv4 {{ import all; export none; }};
}}
protocol bfd bfd1 {{
  interface "vbird1" {{ interval 100 ms; multiplier 3; }};
  neighbor 198.18.2.1 dev "vbird1" local 198.18.2.2;
}}
protocol bgp spk6 {{
  local fd00:2::2 as 64514;
  neighbor fd00:2::1 as 64512;
  passive on;
  ipv6 {{ import all; export none; }};
}}
"#,
            log = dir.join("bird.log").display()
        ),
    )
    .unwrap();
    let bird = Command::new("ip")
        .args(["netns", "exec", NS_BIRD, "bird", "-f", "-c"])
        .arg(&bird_conf)
        .arg("-s")
        .arg(dir.join("bird.ctl"))
        .arg("-P")
        .arg(dir.join("bird.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(bird);
    lab
}

fn vtysh(lab: &Lab, cmd: &str) -> String {
    sh_ok(&[
        "vtysh",
        "--vty_socket",
        lab.dir.join("frr").to_str().unwrap_or_default(),
        "-c",
        cmd,
    ])
}

fn birdc(lab: &Lab, cmd: &str) -> String {
    let sock = lab.dir.join("bird.ctl");
    let mut args = vec!["birdc", "-s", sock.to_str().unwrap_or_default()];
    args.extend(cmd.split(' '));
    sh_ok(&args)
}

unsafe extern "C" {
    fn setns(fd: i32, nstype: i32) -> i32;
}

/// Moves the calling thread into a named network namespace.
fn enter_netns(name: &str) {
    let f = fs::File::open(format!("/run/netns/{name}")).unwrap();
    const CLONE_NEWNET: i32 = 0x4000_0000;
    // SAFETY: plain syscall on a valid fd; affects only this thread.
    let rc = unsafe { setns(f.as_raw_fd(), CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
}

fn session(local: IpAddr, peer: IpAddr, peer_asn: u32, md5: bool) -> SessionConfig {
    let mut p = PeerConfig::new(
        64512,
        PeerAsn::Fixed(peer_asn),
        Ipv4Addr::new(198, 18, 0, 1),
    );
    p.hold_time = 9;
    p.connect_time = Duration::from_millis(500);
    p.connect_time_max = Duration::from_secs(2);
    let mut t = TransportConfig::new(SocketAddr::new(peer, net::BGP_PORT));
    t.source = Some(local);
    t.ttl = net::bgp_ttl(true, false);
    t.md5_password = md5.then(|| MD5.to_string());
    SessionConfig {
        peer: p,
        transport: t,
    }
}

fn routes_for(n: u8) -> BTreeSet<Route> {
    let v4 = Route {
        communities: vec![(64512 << 16) | 100],
        large_communities: vec![(64512, 1, u32::from(n))],
        ..Route::new(
            Prefix::host(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 10))),
            NextHop::V4(Ipv4Addr::new(198, 18, n, 1)),
        )
    };
    let v6 = Route::new(
        Prefix::host(IpAddr::V6("fd00:100::10".parse().unwrap())),
        NextHop::v6(format!("fd00:{n}::1").parse::<Ipv6Addr>().unwrap()),
    );
    [v4, v6].into_iter().collect()
}

async fn wait_all(handles: &[(&str, SessionHandle)], want: State) {
    for (name, h) in handles {
        let mut st = h.status();
        let r = tokio::time::timeout(Duration::from_secs(30), st.wait_for(|s| s.state == want))
            .await
            .is_ok();
        let s = st.borrow().clone();
        assert!(r, "{name}: {want:?} not reached: {s:?}");
        println!("{name}: {s:?}");
    }
}

async fn wait_up(handles: &[(&str, SessionHandle)], bfd: &BfdHandle) -> String {
    wait_all(handles, State::Established).await;
    let mut up = bfd.up();
    let ok = tokio::time::timeout(Duration::from_secs(20), up.wait_for(|u| *u))
        .await
        .is_ok();
    format!("BFD to BIRD up={ok}: {:?}", *bfd.status().borrow())
}

#[test]
#[ignore = "needs root, FRR and BIRD; run by hand"]
fn frr_and_bird() {
    let lab = setup();
    let (routes_frr, frr_rx) = watch::channel(routes_for(1));
    let (routes_bird, bird_rx) = watch::channel(routes_for(2));

    // The speaker runs on a thread that lives in the speaker namespace: sockets belong to the
    // namespace of the thread that creates them.
    let (to_main, from_speaker) = std::sync::mpsc::channel::<String>();
    let (to_speaker, speaker_rx) = std::sync::mpsc::channel::<&'static str>();
    let speaker = std::thread::spawn(move || {
        enter_netns(NS_SPK);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ip = |s: &str| s.parse::<IpAddr>().unwrap();
            let mut bfd_cfg = crate::bgp::bfd::BfdConfig::new(0xf10b);
            bfd_cfg.desired_min_tx = Duration::from_millis(100);
            bfd_cfg.required_min_rx = Duration::from_millis(100);
            let bfd = spawn_bfd(ip("198.18.2.1"), ip("198.18.2.2"), bfd_cfg).expect("BFD sockets");
            let handles = vec![
                (
                    "frr-v4",
                    spawn(
                        session(ip("198.18.1.1"), ip("198.18.1.2"), 64513, true),
                        frr_rx.clone(),
                        None,
                    ),
                ),
                (
                    "frr-v6",
                    spawn(
                        session(ip("fd00:1::1"), ip("fd00:1::2"), 64513, false),
                        frr_rx,
                        None,
                    ),
                ),
                (
                    "bird-v4",
                    spawn(
                        session(ip("198.18.2.1"), ip("198.18.2.2"), 64514, true),
                        bird_rx.clone(),
                        Some(bfd.up()),
                    ),
                ),
                (
                    "bird-v6",
                    spawn(
                        session(ip("fd00:2::1"), ip("fd00:2::2"), 64514, false),
                        bird_rx,
                        None,
                    ),
                ),
            ];
            to_main.send(wait_up(&handles, &bfd).await).unwrap();
            // Commands from the main thread, polled without blocking the runtime.
            loop {
                let Ok(cmd) = speaker_rx.try_recv() else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                match cmd {
                    "link-failure" => {
                        let start = Instant::now();
                        let mut st = handles[2].1.status();
                        let r = tokio::time::timeout(
                            Duration::from_secs(8),
                            st.wait_for(|s| s.state != State::Established),
                        )
                        .await
                        .map(|_| ());
                        let s = st.borrow().clone();
                        to_main
                            .send(format!(
                                "bird-v4 left Established after {:?} (ok={}): {s:?}; BFD: {:?}",
                                start.elapsed(),
                                r.is_ok(),
                                *bfd.status().borrow()
                            ))
                            .unwrap();
                    }
                    "wait-reestablished" => to_main.send(wait_up(&handles, &bfd).await).unwrap(),
                    _ => break,
                }
            }
            let mut report = String::new();
            for (name, h) in handles {
                let st = h.status();
                h.shutdown(StopReason::Shutdown).await;
                report += &format!("{name} after shutdown: {:?}\n", *st.borrow());
            }
            bfd.shutdown().await;
            to_main.send(report).unwrap();
        });
    });

    match from_speaker.recv_timeout(Duration::from_secs(40)) {
        Ok(r) => println!("{r}"),
        Err(_) => {
            println!(
                "--- bgpd.log\n{}",
                fs::read_to_string(lab.dir.join("frr/bgpd.log")).unwrap_or_default()
            );
            println!(
                "--- bird.log\n{}",
                fs::read_to_string(lab.dir.join("bird.log")).unwrap_or_default()
            );
            panic!("sessions did not establish");
        }
    }
    std::thread::sleep(Duration::from_secs(1));

    let frr4 = vtysh(&lab, "show bgp ipv4 unicast");
    let frr6 = vtysh(&lab, "show bgp ipv6 unicast");
    let bird = birdc(&lab, "show route all");
    println!("=== FRR: show bgp ipv4 unicast\n{frr4}\n=== FRR: show bgp ipv6 unicast\n{frr6}");
    println!("=== BIRD: show route all\n{bird}");
    assert!(frr4.contains("198.19.0.10/32"), "FRR lacks the /32");
    assert!(frr6.contains("fd00:100::10/128"), "FRR lacks the /128");
    assert!(bird.contains("198.19.0.10/32"), "BIRD lacks the /32");
    assert!(bird.contains("fd00:100::10/128"), "BIRD lacks the /128");
    assert!(
        bird.contains("(64512, 1, 2)"),
        "BIRD lacks the large community"
    );
    let frr_detail = vtysh(&lab, "show bgp ipv4 unicast 198.19.0.10/32");
    println!("=== FRR: show bgp ipv4 unicast 198.19.0.10/32\n{frr_detail}");
    assert!(frr_detail.contains("64512:100"), "FRR lacks the community");

    // Withdraw the /32 only.
    for tx in [&routes_frr, &routes_bird] {
        tx.send_modify(|set| set.retain(|r| r.prefix.family() != Family::Ipv4Unicast));
    }
    std::thread::sleep(Duration::from_secs(1));
    let frr4 = vtysh(&lab, "show bgp ipv4 unicast");
    let bird = birdc(&lab, "show route");
    println!("=== after withdrawing the /32\n--- FRR ipv4\n{frr4}\n--- BIRD\n{bird}");
    assert!(
        !frr4.contains("198.19.0.10/32"),
        "FRR kept the withdrawn /32"
    );
    assert!(
        !bird.contains("198.19.0.10/32"),
        "BIRD kept the withdrawn /32"
    );
    assert!(bird.contains("fd00:100::10/128"));

    // BFD: BIRD sees the session Up; a dead link tears BGP down long before the 9 s hold time.
    let bird_log = fs::read_to_string(lab.dir.join("bird.log")).unwrap_or_default();
    println!("=== BIRD log so far (bfd1/spk4)");
    for l in bird_log
        .lines()
        .filter(|l| l.contains("bfd1") || l.contains("spk4"))
    {
        println!("{l}");
    }
    let bfd_sessions = birdc(&lab, "show bfd sessions");
    println!("=== BIRD: show bfd sessions\n{bfd_sessions}");
    assert!(bfd_sessions.contains("Up"), "BIRD BFD session not Up");
    sh(&["ip", "-n", NS_BIRD, "link", "set", "vbird1", "down"]);
    to_speaker.send("link-failure").unwrap();
    let report = from_speaker.recv_timeout(Duration::from_secs(20)).unwrap();
    println!("=== link down on the BIRD side\n{report}");
    assert!(
        report.contains("BFD session down"),
        "BGP not torn down by BFD"
    );
    sh(&["ip", "-n", NS_BIRD, "link", "set", "vbird1", "up"]);
    to_speaker.send("wait-reestablished").unwrap();
    let report = from_speaker.recv_timeout(Duration::from_secs(60)).unwrap();
    println!("=== link up again\n{report}");
    assert!(report.contains("up=true"));

    // Administrative shutdown: Cease.
    to_speaker.send("stop").unwrap();
    let report = from_speaker.recv_timeout(Duration::from_secs(20)).unwrap();
    println!("{report}");
    speaker.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let frr_nbr = vtysh(&lab, "show bgp neighbors 198.18.1.1");
    let frr6 = vtysh(&lab, "show bgp ipv6 unicast");
    let bird_p = birdc(&lab, "show protocols all spk4");
    let bird = birdc(&lab, "show route");
    let frr_reset: Vec<&str> = frr_nbr
        .lines()
        .filter(|l| {
            l.contains("Last reset") || l.contains("Notification") || l.contains("BGP state")
        })
        .collect();
    println!(
        "=== after shutdown\n--- FRR neighbor 198.18.1.1\n{}\n--- FRR ipv6\n{frr6}\n--- BIRD spk4\n{bird_p}\n--- BIRD routes\n{bird}",
        frr_reset.join("\n")
    );
    assert!(
        frr_nbr.contains("Administrative Shutdown"),
        "FRR did not see the Cease"
    );
    assert!(
        bird_p.contains("Administrative shutdown"),
        "BIRD did not see the Cease"
    );
    assert!(!frr6.contains("fd00:100::10/128"));
    assert!(!bird.contains("fd00:100::10/128"));
    drop(lab);
    let left = sh_ok(&["ip", "netns", "list"]);
    assert!(!left.contains("t-bgp-"), "namespaces left behind: {left}");
}
