//! Address conflict detection in L2 mode, in the lab (speaker/src/l2/conflict.rs): a pool
//! address that another host on the segment already uses is not announced, and the Service says
//! why (the `L2Announced` condition False with reason AddressConflict naming the host's MAC, the
//! node and the interface; a Warning event; `ferrolb_speaker_address_conflicts_total`); a host
//! that starts claiming an address FerroLB announces is defended once, then reported. The other
//! host is the lab's client (flb-client), which adds the address on its eth0. The tests run one
//! at a time (a lock), with pools of their own.

use std::time::Duration;

use ferrolb_crds::service::AddressConflict;
use ferrolb_tests::l2::{
    ClientAddress, L2Case, address_conflicts, answering_macs, client_mac, conflicts_counted,
};
use ferrolb_tests::{NODES, lab, neighbour_mac, node_mac, serial, wait_for};

/// The Service's events of `reason`: (type, note).
fn events(case: &L2Case, reason: &str) -> Vec<(String, String)> {
    let r = lab().kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        &case.ns.name,
        "--field-selector",
        &format!("reason={reason}"),
        "-o",
        r#"jsonpath={range .items[*]}{.type}{"\t"}{.note}{"\n"}{end}"#,
    ]);
    r.stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Waits for the Service to report conflicts; returns the one seen on the node's eth0 (the
/// client's segment 0).
fn wait_conflict_on_eth0(case: &L2Case) -> AddressConflict {
    let found = wait_for(
        "the AddressConflict condition",
        Duration::from_secs(20),
        || {
            let c = address_conflicts(case);
            (!c.is_empty()).then_some(c)
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: condition {} / {}",
            case.condition("reason"),
            case.condition("message")
        )
    });
    assert_eq!(case.condition("status"), "False");
    found
        .into_iter()
        .find(|c| c.interface == "eth0")
        .expect("a conflict on eth0")
}

fn assert_warning_event(case: &L2Case, conflict: &AddressConflict) {
    let seen = wait_for(
        "a Warning event AddressConflict",
        Duration::from_secs(10),
        || {
            let e = events(case, "AddressConflict");
            (!e.is_empty()).then_some(e)
        },
    )
    .expect("event");
    assert!(
        seen.iter()
            .any(|(t, note)| t == "Warning" && note.contains(&conflict.describe())),
        "{seen:?}"
    );
}

#[test]
fn an_address_in_use_on_the_segment_is_not_announced_and_the_service_says_why() {
    let _s = serial();
    for (addr, family) in [("198.18.0.226", "ipv4"), ("fd00:18::226", "ipv6")] {
        let client = ClientAddress::add(addr);
        let mac = client_mac("eth0");
        let case = L2Case::new(&[addr], Some("{}"), "", &["flb-node1"]);
        assert_eq!(case.ips(), [addr]);
        let conflict = wait_conflict_on_eth0(&case);
        assert_eq!(conflict.address.to_string(), addr);
        assert_eq!(conflict.mac, mac, "names the client's MAC");
        assert!(NODES.contains(&conflict.node.as_str()), "{conflict:?}");
        assert_warning_event(&case, &conflict);
        assert!(
            conflicts_counted(&conflict.node, "eth0", family) >= 1,
            "counted on {} for eth0/{family}",
            conflict.node
        );
        // Nobody but the client answers for it (seen from another host on the segment).
        let answering = answering_macs("flb-frr", addr);
        assert_eq!(
            answering,
            [mac.clone()].into(),
            "{addr}: only the client may answer"
        );

        // The client lets the address go: the node's next probe (10 s after the conflict) finds
        // it free and announces it.
        drop(client);
        wait_for(
            "announced after a quiet re-probe",
            Duration::from_secs(30),
            || (case.condition("reason") == "Announced").then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", case.condition("message")));
        let answer = wait_for("an answer from the node", Duration::from_secs(5), || {
            neighbour_mac(addr, "eth0")
        })
        .expect("answered");
        assert!(
            [node_mac(&conflict.node, 0), node_mac(&conflict.node, 1)].contains(&answer),
            "{addr} answered by {answer}, not by {}",
            conflict.node
        );
    }
}

#[test]
fn a_host_claiming_an_announced_address_is_defended_once_then_reported() {
    let _s = serial();
    let case = L2Case::new(&["198.18.0.227"], Some("{}"), "", &["flb-node1"]);
    let vip = case.ips().remove(0);
    let node = case.announcer();
    assert_eq!(case.condition("reason"), "Announced");
    let before = conflicts_counted(&node, "eth0", "ipv4");
    // The client claims it: unsolicited ARP (sender = target = the address) every 100 ms, as a
    // host configured with it announces itself.
    let claim = lab().exec(
        "flb-client",
        &[
            "arping", "-U", "-S", &vip, "-i", "eth0", "-c", "3", "-W", "0.1", &vip,
        ],
    );
    assert!(claim.stdout.contains("ARPING"), "{}", claim.stderr);
    let conflict = wait_conflict_on_eth0(&case);
    assert_eq!(conflict.mac, client_mac("eth0"));
    assert_eq!(conflict.node, node);
    assert_warning_event(&case, &conflict);
    assert!(conflicts_counted(&node, "eth0", "ipv4") > before);
    // Reported, not given up: the node still answers (one foreign frame must not take a Service
    // down).
    let answer = wait_for("an answer from the node", Duration::from_secs(5), || {
        neighbour_mac(&vip, "eth0")
    })
    .expect("answered");
    assert_eq!(answer, node_mac(&node, 0));
}
