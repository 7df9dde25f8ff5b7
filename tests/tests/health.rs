//! Honest speaker health in the lab: a speaker that cannot open packet sockets (no CAP_NET_RAW)
//! says so on /readyz and in a metric, logs it once, does not spin, and stays out of the
//! membership, so the other nodes keep answering for every address it would have won.
//!
//! The test stops one lab speaker (its supervisor held) and runs the same command line, in the
//! same node namespace with the same environment, under `setpriv` without CAP_NET_RAW; the lab's
//! speaker comes back when the test ends (also when it fails).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_tests::l2::{Hold, L2Case, signal_speaker, wait_membership_whole, wait_speaker_back};
use ferrolb_tests::{NODES, Responders, lab, repo, speaker_metrics, wait_for, who_answers};

/// The command line and environment of a running process (`/proc`).
fn command_of(pid: i32) -> (Vec<String>, Vec<(String, String)>) {
    let split = |file: &str| -> Vec<String> {
        let raw = std::fs::read(format!("/proc/{pid}/{file}")).expect("read /proc");
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    };
    let env = split("environ")
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    (split("cmdline"), env)
}

/// Our speaker without CAP_NET_RAW, in place of the lab's (held) one; stopped when dropped, and
/// the lab's speaker let back.
struct Crippled {
    node: String,
    child: Child,
    log: std::path::PathBuf,
    old_pid: i32,
    hold: Option<Hold>,
}

impl Crippled {
    fn start(node: &str) -> Crippled {
        let old_pid = lab().pid(&format!("speaker-{node}")).expect("speaker pid");
        let (cmdline, env) = command_of(old_pid);
        let hold = Hold::speaker(node);
        // SIGTERM: the lab speaker leaves the membership gracefully; the others take over.
        signal_speaker(node, "-TERM");
        wait_for("the lab speaker to stop", Duration::from_secs(10), || {
            (!std::path::Path::new(&format!("/proc/{old_pid}")).exists()).then_some(())
        })
        .expect("stopped");
        let log = repo().join(format!(".lab/logs/test-health-{node}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", node])
            // Out of the bounding and inheritable sets, root cannot get it back at exec.
            .args([
                "setpriv",
                "--bounding-set",
                "-net_raw",
                "--inh-caps",
                "-net_raw",
                "--",
            ])
            .args(&cmdline)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("speaker starts");
        Crippled {
            node: node.to_string(),
            child,
            log,
            old_pid,
            hold: Some(hold),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// CPU time the process used so far (user + system), from /proc/PID/stat.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After the command name: state is field 3, utime 14, stime 15 (1-based).
        let ticks = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Duration::from_millis((ticks(14) + ticks(15)) * 10)
    }

    /// `curl` of the speaker's own HTTP endpoint, inside its node: (status code, body).
    fn http(&self, path: &str) -> (String, String) {
        let r = lab().exec(
            &self.node,
            &[
                "curl",
                "-s",
                "--max-time",
                "1",
                "-w",
                "\n%{http_code}",
                &format!("http://127.0.0.1:7473{path}"),
            ],
        );
        let (body, code) = r.stdout.rsplit_once('\n').unwrap_or(("", ""));
        (code.to_string(), body.to_string())
    }
}

impl Drop for Crippled {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.hold.take());
        wait_speaker_back(&self.node, self.old_pid);
        wait_membership_whole(Duration::from_secs(15));
    }
}

/// Members each speaker's own metric shows, by node.
fn members(node: &str) -> Option<u64> {
    speaker_metrics(node)
        .lines()
        .find_map(|l| l.strip_prefix("ferrolb_speaker_members "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn speaker_without_net_raw_fails_readiness_and_stays_out_of_the_membership() {
    wait_membership_whole(Duration::from_secs(15));
    // Several addresses, endpoints on every node: the election spreads them over the nodes.
    let cases: Vec<L2Case> = (210..214)
        .map(|i| L2Case::new(&[&format!("198.18.0.{i}")], Some("{}"), "", &NODES))
        .collect();
    let vips: Vec<String> = cases.iter().map(|c| c.ips().remove(0)).collect();
    let _responders: Vec<Responders> = vips.iter().map(|v| Responders::start(v)).collect();
    // The victim is a node that announces something with the whole cluster live: started
    // again with the same membership, it would win the same addresses.
    let victim = cases[0].announcer();
    let owned: Vec<&String> = vips
        .iter()
        .zip(&cases)
        .filter(|(_, c)| c.announcer() == victim)
        .map(|(v, _)| v)
        .collect();
    println!("victim {victim} announces {owned:?}");
    for v in &vips {
        wait_for("every address to answer", Duration::from_secs(10), || {
            who_answers(v)
        })
        .unwrap();
    }

    let speaker = Crippled::start(&victim);
    let started = Instant::now();
    for v in &vips {
        wait_for("the others to answer", Duration::from_secs(5), || {
            who_answers(v).filter(|n| *n != victim)
        })
        .unwrap();
    }
    let all_answered = started.elapsed();
    println!("every address answered by another node {all_answered:?} after the start");

    // /readyz fails (503) as soon as it answers at all, and never says ready.
    let (code, _) = wait_for("the speaker's HTTP server", Duration::from_secs(10), || {
        Some(speaker.http("/readyz")).filter(|(c, _)| c != "000")
    })
    .unwrap();
    assert_eq!(code, "503", "{}", speaker.log());
    let (_, metrics) = speaker.http("/metrics");
    assert!(
        metrics.contains("ferrolb_speaker_runtime_up{runtime=\"l2\"} 0"),
        "{metrics}"
    );

    // For a while (a joined speaker would have won its addresses within ~1 s): the others keep
    // seeing two members, every address is answered by a node other than the victim, readiness
    // stays failed.
    let watch_until = Instant::now() + Duration::from_secs(5);
    let mut rounds = 0;
    while Instant::now() < watch_until {
        for v in &vips {
            let who = who_answers(v);
            assert!(
                who.as_ref().is_some_and(|n| *n != victim),
                "{v} answered by {who:?} {:?} after the crippled speaker started\n{}",
                started.elapsed(),
                speaker.log()
            );
        }
        for n in NODES.iter().filter(|n| **n != victim) {
            assert_eq!(
                members(n),
                Some(2),
                "{n} sees the crippled speaker as a member"
            );
        }
        assert_eq!(speaker.http("/readyz").0, "503");
        rounds += 1;
    }
    println!("{rounds} rounds of checks over 5 s: all answered by the others");

    // The cause is logged once, and the process does not spin (old behaviour: a busy loop on
    // the closed status channel, a full core).
    let log = speaker.log();
    assert_eq!(
        log.matches("the L2 runtime cannot work").count(),
        1,
        "{log}"
    );
    assert!(log.contains("CAP_NET_RAW"), "{log}");
    let lived = started.elapsed();
    let cpu = speaker.cpu();
    println!("CPU {cpu:?} over {lived:?}");
    assert!(
        cpu < lived / 4,
        "the speaker used {cpu:?} of CPU in {lived:?}: busy loop?"
    );
    drop(speaker);
}
