//! What the speakers show on Services, in the lab: the `ferrolb.io/L2Announced` condition and the
//! NodeAssigned events follow every move of an address, back to a previous node included, and an
//! address elected to a node that has none of its L2Advertisement's interfaces says so.

use std::time::Duration;

use ferrolb_tests::l2::L2Case;
use ferrolb_tests::{DeletedOnDrop, lab, object_yaml, repo, wait_for};

/// The Service's events of `reason`, oldest first: (reporting node, note).
fn events(case: &L2Case, reason: &str) -> Vec<(String, String)> {
    let r = lab().kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &case.ns.name,
        "--field-selector",
        &format!("reason={reason}"),
        "--sort-by",
        ".eventTime",
        "-o",
        r#"jsonpath={range .items[*]}{.reportingInstance}{"\t"}{.note}{"\n"}{end}"#,
    ]);
    r.stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn condition_and_node_assigned_follow_a_to_b_to_a() {
    // externalTrafficPolicy: Local: only a node with a serving endpoint announces, so moving the
    // endpoint moves the address, without restarting any speaker (a restarted speaker forgets
    // what it wrote, which would hide the stale cache this test is about).
    let case = L2Case::new(
        &["198.18.0.216"],
        Some("{}"),
        "  externalTrafficPolicy: Local\n",
        &["flb-node1"],
    );
    let vip = case.ips().remove(0);
    let moves = ["flb-node1", "flb-node2", "flb-node1"];
    for (i, node) in moves.iter().enumerate() {
        case.endpoints(&[node]);
        let want = format!("{vip} from node {node} ");
        wait_for(
            &format!("move {}: the condition naming {node}", i + 1),
            Duration::from_secs(15),
            || {
                let msg = case.condition("message");
                (msg.contains(&want) && case.condition("status") == "True").then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", case.condition("message")));
        let seen = wait_for(
            &format!("move {}: a NodeAssigned event from {node}", i + 1),
            Duration::from_secs(10),
            || {
                let ev = events(&case, "NodeAssigned");
                (ev.len() > i
                    && ev
                        .last()
                        .is_some_and(|(by, note)| by == node && note.contains(&want)))
                .then_some(ev)
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", events(&case, "NodeAssigned")));
        println!("move {}: {node}; NodeAssigned events {seen:?}", i + 1);
    }
    let ev = events(&case, "NodeAssigned");
    let back = ev.iter().filter(|(by, _)| by == "flb-node1").count();
    assert!(back >= 2, "node1 announced it twice: {ev:?}");
}

#[test]
fn interfaces_matching_nothing_on_the_elected_node_are_reported() {
    // One interface that exists nowhere, one that exists but can never be used (loopback).
    let case = L2Case::new(
        &["198.18.0.217"],
        Some("{interfaces: [flbnone0, lo]}"),
        "",
        &["flb-node1"],
    );
    let vip = case.ips().remove(0);
    let reason = wait_for("the L2 condition", Duration::from_secs(15), || {
        Some(case.condition("reason")).filter(|r| !r.is_empty())
    })
    .unwrap();
    let message = case.condition("message");
    println!("{reason}: {message}");
    assert_eq!(reason, "NoMatchingInterface", "{message}");
    assert_eq!(case.condition("status"), "False");
    assert!(message.contains(&vip), "{message}");
    assert!(
        message.contains("flbnone0 (no such interface)"),
        "{message}"
    );
    assert!(message.contains("lo (loopback)"), "{message}");
    let node = message
        .split("elected to node ")
        .nth(1)
        .and_then(|s| s.split([',', ' ']).next())
        .unwrap_or_default()
        .to_string();
    assert!(node.starts_with("flb-node"), "names the node: {message}");
    let warned = wait_for(
        "a NoMatchingInterface event",
        Duration::from_secs(10),
        || Some(events(&case, "NoMatchingInterface")).filter(|e| !e.is_empty()),
    )
    .unwrap();
    assert_eq!(warned[0].0, node, "{warned:?}");
    // Logged once by that node, however many times it replans (every second at least).
    std::thread::sleep(Duration::from_secs(3));
    let log = std::fs::read_to_string(repo().join(format!(".lab/logs/speaker-{node}.log")))
        .unwrap_or_default();
    let key = format!("{}/web", case.ns.name);
    let lines = log
        .lines()
        .filter(|l| l.contains("announced on no interface") && l.contains(&key))
        .count();
    assert_eq!(lines, 1, "logged once");
}

#[test]
fn bgp_peer_entries_of_nodes_that_stop_peering_are_removed() {
    let peer = DeletedOnDrop {
        kind: "bgppeer",
        name: ferrolb_tests::unique("gone"),
    };
    // Nobody listens at this address: the session stays in Connect/Active, which is enough for
    // the node to report it.
    let apply = |node: &str| {
        let r = lab().apply(&object_yaml(
            "BGPPeer",
            &peer.name,
            &format!(
                "{{myASN: 64600, peerASN: 64512, peerAddress: 198.18.0.97, connectTime: 1s,\n  \
                 nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {node}}}}}]}}"
            ),
        ));
        assert!(r.ok, "{}", r.stderr);
    };
    let nodes = || {
        lab()
            .kubectl(&[
                "get",
                "bgppeer",
                "-n",
                ferrolb_crds::DEFAULT_NAMESPACE,
                &peer.name,
                "-o",
                "jsonpath={.status.sessions[*].node}",
            ])
            .stdout
    };
    apply("flb-node1");
    wait_for("flb-node1's entry", Duration::from_secs(15), || {
        (nodes() == "flb-node1").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", nodes()));
    // The peer now selects another node: flb-node1 no longer peers and removes its entry.
    apply("flb-node2");
    wait_for("flb-node2's entry alone", Duration::from_secs(15), || {
        (nodes() == "flb-node2").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", nodes()));
}
