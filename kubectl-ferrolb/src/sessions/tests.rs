use super::*;
use crate::fixtures::snapshot;

#[test]
fn one_row_per_node_and_peer_and_one_for_a_peer_nobody_reports() {
    let s = build(&snapshot());
    let rows: Vec<_> = s
        .sessions
        .iter()
        .map(|r| (r.peer.as_str(), r.node.as_deref(), r.state.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            ("frr4", Some("flb-node1"), Some("Established")),
            ("frr4", Some("flb-node2"), Some("Active")),
            ("nobody", None, None),
        ]
    );
    let out = human(&s);
    println!("{out}");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(
        lines[0],
        "PEER    ADDRESS      ASN    NODE       STATE                        BFD  PREFIXES  LAST-ERROR"
    );
    assert_eq!(
        lines[2],
        "frr4    198.18.0.2   64512  flb-node2  Active                       -    0         connect: connection refused"
    );
    assert!(lines[3].contains("(no node reports a session)"));
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["sessions"][0]["prefixesSent"], 2);
    assert_eq!(v["sessions"][0]["peerASN"], 64512);
    assert_eq!(v["sessions"][1]["lastError"], "connect: connection refused");
}
