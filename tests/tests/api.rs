//! The ferrolb.io API against the lab's real kube-apiserver: valid samples are accepted, and a
//! representative invalid object of each kind is rejected with a message that says what to fix.

use ferrolb_tests::{assert_refused, lab, object_yaml, repo, unique};

/// Applies `yaml` with the object renamed to something unique; returns the server's answer.
fn apply_named(kind: &str, spec: &str) -> ferrolb_tests::Ran {
    lab().apply(&object_yaml(kind, &unique("bad"), spec))
}

fn assert_rejected(kind: &str, spec: &str, expected: &[&str]) {
    assert_refused(&apply_named(kind, spec), kind, spec, expected);
}

#[test]
fn the_six_kinds_are_served() {
    let r = lab().kubectl(&["api-resources", "--api-group=ferrolb.io", "-o", "name"]);
    assert!(r.ok, "{}", r.stderr);
    for plural in [
        "ipaddresspools",
        "l2advertisements",
        "bgpadvertisements",
        "bgppeers",
        "bfdprofiles",
        "communities",
    ] {
        assert!(
            r.stdout.contains(&format!("{plural}.ferrolb.io")),
            "{plural} missing:\n{}",
            r.stdout
        );
    }
}

#[test]
fn valid_samples_are_accepted() {
    for f in ["ipaddresspool.yaml", "l2advertisement.yaml", "bgp.yaml"] {
        let path = repo().join("crds/samples").join(f);
        let r = lab().kubectl(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
        assert!(r.ok, "{f} rejected: {}", r.stderr);
    }
}

#[test]
fn invalid_pools_are_rejected() {
    assert_rejected(
        "IPAddressPool",
        r#"{addresses: ["198.18.10.5/24", "nonsense", "198.18.0.1-fd00::1"]}"#,
        &[
            "spec.addresses[0]",
            "must be a CIDR with zero host bits",
            "spec.addresses[1]",
            "spec.addresses[2]",
        ],
    );
    assert_rejected(
        "IPAddressPool",
        "{addresses: []}",
        &["spec.addresses", "should have at least 1 items"],
    );
    assert_rejected(
        "IPAddressPool",
        "{addresses: [198.18.10.0/24], serviceAllocation: {priority: -1}}",
        &["spec.serviceAllocation.priority"],
    );
}

#[test]
fn invalid_peers_are_rejected() {
    assert_rejected(
        "BGPPeer",
        r#"{myASN: 64600, peerASN: 64512, dynamicASN: external, peerAddress: "not-an-ip", holdTime: "2s",
            routerID: "fd00::1", password: x, passwordSecret: {name: s}}"#,
        &[
            "set exactly one of peerASN and dynamicASN",
            "set password or passwordSecret, not both",
            "holdTime must be 0s",
            "'not-an-ip' is not an IP address",
            "write it as an IPv4 address",
        ],
    );
    assert_rejected(
        "BGPPeer",
        r#"{myASN: 64600, peerASN: 64600, peerAddress: 198.18.0.2, ebgpMultiHop: true, keepaliveTime: 100s}"#,
        &[
            "ebgpMultiHop applies to eBGP only",
            "keepaliveTime must be shorter than holdTime",
        ],
    );
    assert_rejected(
        "BGPPeer",
        r#"{myASN: 64600, peerASN: 64512, peerAddress: "198.18.0.2", sourceAddress: "fd00::1", holdTime: 90}"#,
        &["spec.holdTime"],
    );
    assert_rejected(
        "BGPPeer",
        r#"{myASN: 0, peerASN: 64512, peerAddress: "198.18.0.2", sourceAddress: "fd00::1"}"#,
        &[
            "spec.myASN",
            "sourceAddress and peerAddress must be of one family",
        ],
    );
}

#[test]
fn invalid_advertisements_are_rejected() {
    assert_rejected(
        "BGPAdvertisement",
        r#"{aggregationLength: 33, aggregationLengthV6: 129, communities: ["65536:1", "large:1:2:3", "ok-alias", "$$"]}"#,
        &[
            "spec.aggregationLength",
            "spec.aggregationLengthV6",
            "'65536:1' is neither a community value",
            "spec.communities[3]",
        ],
    );
    assert_rejected(
        "BGPAdvertisement",
        r#"{serviceClusterIPs: ["198.19.0.5/16", "198.19.0.0/16"], serviceExternalIPs: ["198.18.120.1-198.18.120.9"]}"#,
        &[
            "'198.19.0.5/16' must be a CIDR with zero host bits",
            "'198.18.120.1-198.18.120.9' must be a CIDR with zero host bits",
        ],
    );
    assert_rejected(
        "L2Advertisement",
        "{nodeSelectors: [{matchExpressions: [{key: k}]}]}",
        &["spec.nodeSelectors[0].matchExpressions[0].operator: Required value"],
    );
}

#[test]
fn invalid_bfd_profiles_and_communities_are_rejected() {
    assert_rejected(
        "BFDProfile",
        "{receiveInterval: 5, detectMultiplier: 1, minimumTtl: 255}",
        &[
            "spec.receiveInterval",
            "spec.detectMultiplier",
            "spec.minimumTtl",
        ],
    );
    assert_rejected(
        "Community",
        r#"{communities: [{name: a, value: "70000:1"}, {name: a, value: "large:1:2"}]}"#,
        &[
            "Duplicate value",
            "'70000:1' is not a community",
            "'large:1:2' is not a community",
        ],
    );
}
