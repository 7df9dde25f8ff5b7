//! `kubectl ferrolb` against the lab: `status` (human and JSON) and `explain` of an announced
//! Service and of a pending one, in layer 2 (naming the node and interface) and over BGP (naming
//! the advertising nodes), and `sessions` with an Established session and a down one. Plus what
//! the plugin says, and its exit code, when the API server is unreachable or FerroLB's CRDs are
//! missing (no lab needed). The plugin is the binary `cargo build --workspace --bins` builds.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_tests::bgp::{BgpService, FRR, Objects, shown_sessions, wait_shown_established};
use ferrolb_tests::l2::L2Case;
use ferrolb_tests::{NODES, Ran, binary, free_port, lab, run, unique, wait_for};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(40);

/// Runs `kubectl-ferrolb --kubeconfig KUBECONFIG ARGS`.
fn plugin_with(kubeconfig: &Path, args: &[&str]) -> Ran {
    run(Command::new(binary("kubectl-ferrolb"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args))
}

/// Runs the plugin against the lab; panics unless it succeeds.
fn plugin(args: &[&str]) -> String {
    let r = plugin_with(&lab().kubeconfig, args);
    assert!(r.ok, "kubectl-ferrolb {args:?} failed: {}", r.stderr);
    r.stdout
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&plugin(&all)).expect("the plugin prints JSON")
}

/// The whitespace-separated cells of the human table row whose first two cells are `a` and `b`.
fn row(out: &str, a: &str, b: &str) -> Option<Vec<String>> {
    out.lines().find_map(|l| {
        let cells: Vec<String> = l.split_whitespace().map(String::from).collect();
        (cells.len() > 2 && cells[0] == a && cells[1] == b).then_some(cells)
    })
}

/// The entry of `list` (a JSON array) with these namespace and name.
fn entry<'a>(list: &'a Value, ns: &str, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|e| e["namespace"] == ns && e["name"] == name)
}

/// Applies a Service `name` in `ns` pinned to pool `pool`.
fn pinned_service(ns: &ferrolb_tests::TestNamespace, name: &str, pool: &str) {
    let r = ns.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  annotations: {{ferrolb.io/address-pool: {pool}}}\n\
         spec:\n  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  ports: [{{port: 80}}]\n"
    ));
    assert!(r.ok, "{}", r.stderr);
}

/// Waits until `status -o json` lists `ns/name` as pending with `reason`; returns its entry.
fn wait_pending(ns: &str, name: &str, reason: &str) -> Value {
    wait_for(&format!("{ns}/{name} pending ({reason})"), SETTLE, || {
        let v = json(&["status"]);
        entry(&v["pending"], ns, name)
            .filter(|e| e["reason"] == reason)
            .cloned()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", plugin(&["status"])))
}

#[test]
fn layer2_status_and_explain_name_the_node_and_interface_and_why_one_is_pending() {
    let case = L2Case::new(&["198.18.0.231"], Some("{}"), "", &["flb-node1"]);
    let ns = case.ns.name.clone();
    let vip = case.ips().remove(0);
    let announcer = case.announcer();
    // The speaker's own words: "layer2: VIP from node N on IFACES".
    let ifaces = case
        .condition("message")
        .split(" on ")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(!ifaces.is_empty(), "{}", case.condition("message"));
    let missing = unique("no-such-pool");
    pinned_service(&case.ns, "stuck", &missing);
    let stuck = wait_pending(&ns, "stuck", "PoolNotUsable");
    assert!(
        stuck["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&missing),
        "{stuck}"
    );

    // JSON: addresses, pool, and the announcer with its interfaces.
    let v = json(&["status"]);
    let web = entry(&v["services"], &ns, "web").expect("web listed");
    assert_eq!(web["addresses"], serde_json::json!([vip]));
    assert_eq!(web["pool"], case.name.as_str());
    let l2 = &web["announcement"]["layer2"];
    assert_eq!(l2["announced"], true, "{web}");
    assert_eq!(l2["nodes"], serde_json::json!([announcer]));
    let want_ifaces: Vec<&str> = ifaces.split(", ").collect();
    assert_eq!(l2["interfaces"], serde_json::json!(want_ifaces));
    let pool = v["pools"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == case.name.as_str()))
        .expect("the pool listed");
    assert_eq!(pool["valid"], true);
    assert_eq!(pool["ipv4"], serde_json::json!({"used": 1, "free": 0}));

    // Human: the same in columns.
    let out = plugin(&["status"]);
    println!("{out}");
    let cells = row(&out, &ns, "web").unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert_eq!(cells[2], vip, "{out}");
    assert_eq!(cells[3], case.name, "{out}");
    assert_eq!(
        cells[4..].join(" "),
        format!("L2 {announcer} ({})", want_ifaces.join(",")),
        "{out}"
    );
    let cells = row(&out, &ns, "stuck").unwrap_or_else(|| panic!("no pending row:\n{out}"));
    assert_eq!(cells[2], "PoolNotUsable", "{out}");
    let cells = row(&out, &case.name, "True").unwrap_or_else(|| panic!("no pool row:\n{out}"));
    assert_eq!(cells[2..6], ["false", "1", "0", "0"], "{out}");

    // explain, both ways of naming the Service.
    let out = plugin(&["explain", "-n", &ns, "web"]);
    println!("{out}");
    assert!(
        out.contains(&format!(
            "has address {vip} from IPAddressPool {} (valid).",
            case.name
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "node {announcer} answers ARP/NDP for it on {ifaces}."
        )),
        "{out}"
    );
    assert!(out.contains("NodeAssigned ("), "the speaker's event: {out}");
    let out = plugin(&["explain", &format!("{ns}/stuck")]);
    println!("{out}");
    assert!(
        out.contains(&format!("{ns}/stuck has no address: PoolNotUsable: "))
            && out.contains(&missing),
        "{out}"
    );
    let e = json(&["explain", "-n", &ns, "stuck"]);
    assert_eq!(e["allocated"], false);
    assert_eq!(e["reason"], "PoolNotUsable");
    let r = plugin_with(&lab().kubeconfig, &["explain", "-n", &ns, "nothing-here"]);
    assert!(!r.ok && r.stderr.contains("not found"), "{r:?}");
}

#[test]
fn bgp_status_explain_and_sessions_show_who_advertises_and_the_down_session() {
    let p = unique("kp-bgp");
    let mut o = Objects::new();
    let up = format!("{p}-frr");
    let down = format!("{p}-down");
    o.peer(&up, FRR, false, "");
    // Nobody listens at this address on the nodes' segment: the session never establishes.
    o.apply(
        "BGPPeer",
        &down,
        "{myASN: 64600, peerASN: 64512, peerAddress: 198.18.0.96, connectTime: 1s,\n  \
         nodeSelectors: [{matchLabels: {kubernetes.io/hostname: flb-node1}}]}",
    );
    let svc = BgpService::new(
        &["198.18.61.1"],
        &format!("peers: [{up}, {down}]"),
        "Cluster",
        &["flb-node1"],
    );
    let ns = svc.ns.name.clone();
    let ip = svc.ips().remove(0);
    wait_shown_established(&up, SETTLE, |e| e.prefixes_sent == 1);
    let down_state = wait_for("the down session shown", SETTLE, || {
        shown_sessions(&down)
            .into_iter()
            .find(|s| s.node == "flb-node1" && s.state != "Established")
            .map(|s| s.state)
    })
    .unwrap();
    // The pool's only address is taken: a second Service pinned to it waits.
    pinned_service(&svc.ns, "more", &svc.pool);
    wait_pending(&ns, "more", "PoolExhausted");

    // sessions: one row per node for the Established peer, and the down one.
    let out = plugin(&["sessions"]);
    println!("{out}");
    for node in NODES {
        let cells = out
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|c| c.len() > 6 && c[0] == up && c[3] == node)
            .unwrap_or_else(|| panic!("no {up} row for {node}:\n{out}"));
        assert_eq!(
            cells[1..7],
            ["198.18.0.2", "64512", node, "Established", "-", "1"],
            "{out}"
        );
    }
    let cells = row(&out, &down, "198.18.0.96").unwrap_or_else(|| panic!("no {down} row:\n{out}"));
    assert_eq!(cells[3], "flb-node1", "{out}");
    assert_ne!(cells[4], "Established", "{out}");
    let v = json(&["sessions"]);
    let rows: Vec<&Value> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["peer"] == down.as_str())
        .collect();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["node"], "flb-node1");
    assert!(rows[0]["state"].is_string() && rows[0]["state"] != "Established");
    assert_eq!(rows[0]["peerAddress"], "198.18.0.96");
    println!("down session state as the speaker showed it: {down_state}");

    // status: who advertises the Service, and the pending one with its reason.
    let v = json(&["status"]);
    let web = entry(&v["services"], &ns, "web").expect("web listed");
    assert_eq!(web["addresses"], serde_json::json!([ip]));
    assert_eq!(web["pool"], svc.pool.as_str());
    let peers = web["announcement"]["bgp"]["peers"].as_array().expect("bgp");
    let by_peer = |name: &str| peers.iter().find(|x| x["peer"] == name).cloned();
    let frr = by_peer(&up).expect("the up peer");
    assert_eq!(frr["established"], serde_json::json!(NODES));
    assert_eq!(frr["advertising"], serde_json::json!(NODES));
    let d = by_peer(&down).expect("the down peer");
    assert_eq!(d["established"], serde_json::json!([]));
    assert_eq!(d["down"][0]["node"], "flb-node1");
    let out = plugin(&["status"]);
    println!("{out}");
    let cells = row(&out, &ns, "web").unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert_eq!(cells[2], ip, "{out}");
    assert_eq!(cells[3], svc.pool, "{out}");
    assert_eq!(
        cells[4..].join(" "),
        format!(
            "BGP {down}: no Established session; BGP {up}: {}",
            NODES.join(",")
        ),
        "{out}"
    );
    let cells = row(&out, &ns, "more").unwrap_or_else(|| panic!("no pending row:\n{out}"));
    assert_eq!(cells[2], "PoolExhausted", "{out}");

    // explain: the advertising nodes, the peer nobody reaches, and the pending Service.
    let out = plugin(&["explain", "-n", &ns, "web"]);
    println!("{out}");
    assert!(
        out.contains(&format!(
            "advertised to peer {up} (198.18.0.2) by node {}.",
            NODES.join(", ")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "peer {down} (198.18.0.96) has no Established session, so it does not learn it; not Established on flb-node1 ("
        )),
        "{out}"
    );
    let out = plugin(&["explain", "-n", &ns, "more"]);
    println!("{out}");
    assert!(
        out.contains(&format!("{ns}/more has no address: PoolExhausted: ")),
        "{out}"
    );

    // externalTrafficPolicy Local: only the node with the endpoint advertises, though every
    // node's session is Established.
    svc.set_policy("Local");
    let advertising = wait_for("only flb-node1 advertising", SETTLE, || {
        let v = json(&["status"]);
        let web = entry(&v["services"], &ns, "web")?.clone();
        let frr = web["announcement"]["bgp"]["peers"]
            .as_array()?
            .iter()
            .find(|x| x["peer"] == up.as_str())?
            .clone();
        (frr["advertising"] == serde_json::json!(["flb-node1"])).then_some(frr)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", plugin(&["status"])));
    assert_eq!(advertising["established"], serde_json::json!(NODES));
    let out = plugin(&["status"]);
    let cells = row(&out, &ns, "web").unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert_eq!(
        cells[4..].join(" "),
        format!("BGP {down}: no Established session; BGP {up}: flb-node1"),
        "{out}"
    );
    let out = plugin(&["explain", "-n", &ns, "web"]);
    println!("{out}");
    assert!(
        out.contains(
            "externalTrafficPolicy is Local, so only nodes with a serving endpoint advertise it (flb-node1)."
        ) && out.contains(&format!("advertised to peer {up} (198.18.0.2) by node flb-node1.")),
        "{out}"
    );
}

/// A kubeconfig for `server`, without credentials, in a file of its own.
fn kubeconfig_for(server: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", unique("kubectl-ferrolb")));
    let body = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n\
         users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n\
         current-context: x\n"
    );
    std::fs::write(&path, body).expect("kubeconfig written");
    path
}

#[test]
fn unreachable_api_fails_with_a_clear_message() {
    let port = free_port(); // nothing listens there
    let kc = kubeconfig_for(&format!("https://127.0.0.1:{port}"));
    for cmd in ["status", "sessions"] {
        let r = plugin_with(&kc, &[cmd]);
        assert!(!r.ok, "{r:?}");
        assert!(
            r.stderr.contains(&format!(
                "cannot reach the Kubernetes API server at https://127.0.0.1:{port}"
            )),
            "{r:?}"
        );
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    let _ = std::fs::remove_file(kc);
}

#[test]
fn missing_crds_fail_with_a_clear_message() {
    // An API server without FerroLB's CRDs: 404 for ferrolb.io, empty lists for the rest.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (code, body) = if first.contains("/apis/ferrolb.io/") {
                (
                    "404 Not Found",
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#,
                )
            } else {
                (
                    "200 OK",
                    r#"{"kind":"List","apiVersion":"v1","metadata":{},"items":[]}"#,
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {code}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let kc = kubeconfig_for(&format!("http://127.0.0.1:{port}"));
    for cmd in ["status", "sessions"] {
        let r = plugin_with(&kc, &[cmd]);
        assert!(!r.ok, "{r:?}");
        assert!(
            r.stderr.contains("FerroLB's CRDs are not installed"),
            "{r:?}"
        );
    }
    let _ = std::fs::remove_file(kc);
}
