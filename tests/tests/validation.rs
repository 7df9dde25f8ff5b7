//! Fields mean what they say, and what cannot work is refused, against the lab's real API server:
//! CEL rejections (unusable pool addresses, interface names) and `Valid` conditions written by a
//! controller of the test's own (its own configuration namespace), for what CEL cannot see:
//! a range spanning an unusable block, aggregation per CIDR of a range, `passwordSecret` in
//! another namespace, missing or malformed password Secrets.

use std::time::Duration;

use ferrolb_tests::controller::ControllerProc;
use ferrolb_tests::{TestNamespace, assert_refused, lab, object_yaml, unique, wait_for};

/// Applies one object of `kind` (in FerroLB's namespace, or `ns`) with a unique name.
fn apply_in(ns: &str, kind: &str, name: &str, spec: &str) -> ferrolb_tests::Ran {
    lab().kubectl_in(
        &["apply", "-n", ns, "-f", "-"],
        &object_yaml(kind, name, spec),
    )
}

/// What the API server says to `spec`, without storing anything (a server-side dry run: every
/// validation runs, and an object wrongly accepted never reaches the lab's FerroLB).
fn try_apply(kind: &str, spec: &str) -> ferrolb_tests::Ran {
    let yaml = object_yaml(kind, &unique("probe"), spec);
    lab().kubectl_in(
        &[
            "apply",
            "--dry-run=server",
            "-n",
            ferrolb_crds::DEFAULT_NAMESPACE,
            "-f",
            "-",
        ],
        &yaml,
    )
}

/// Asserts the API server refuses `spec` and says each of `expected`.
fn assert_rejected(kind: &str, spec: &str, expected: &[&str]) {
    assert_refused(&try_apply(kind, spec), kind, spec, expected);
}

fn assert_accepted(kind: &str, spec: &str) {
    let r = try_apply(kind, spec);
    assert!(r.ok, "{kind} {spec} refused: {}", r.stderr);
}

#[test]
fn pools_with_unusable_addresses_are_rejected() {
    let why = "overlaps addresses that cannot be announced or reached";
    for block in [
        "127.0.0.0/8",
        "127.0.0.1/32",
        "0.0.0.0/0",
        "0.0.0.0/32",
        "0.1.2.0/24",
        "224.0.0.0/24",
        "239.1.1.1-239.1.1.9",
        "255.255.255.255/32",
        "169.254.0.0/16",
        "169.254.10.1-169.254.10.5",
        "198.18.0.250-224.0.0.1",
        "::/128",
        "::/0",
        "::1/128",
        "fe80::/64",
        "ff02::1/128",
        "fd00::1-ff00::1",
    ] {
        assert_rejected(
            "IPAddressPool",
            &format!("{{addresses: [\"198.18.40.0/24\", \"{block}\"]}}"),
            &[
                "spec.addresses[1]",
                &format!("'{block}' {why}"),
                "(loopback)",
            ],
        );
    }
    // Unicast blocks next to the refused ones stay accepted.
    for block in [
        "198.18.40.0/24",
        "1.0.0.0/8",
        "126.255.255.255/32",
        "128.0.0.0/32",
        "169.253.255.255/32",
        "223.255.255.255/32",
        "fd00:18:40::/120",
        "fe7f::1-fe7f::9",
    ] {
        assert_accepted("IPAddressPool", &format!("{{addresses: [\"{block}\"]}}"));
    }
}

#[test]
fn l2_interface_names_must_be_linux_interface_names() {
    let r = try_apply(
        "L2Advertisement",
        r#"{interfaces: ["eth0", "../../etc", "eth0:1", ".", "..", "a b", "x2345678901234567", "", "bond0.100"]}"#,
    );
    assert!(!r.ok, "accepted: {}", r.stdout);
    for (i, name) in [
        (1, "../../etc"),
        (2, "eth0:1"),
        (3, "."),
        (4, ".."),
        (5, "a b"),
        (6, "x2345678901234567"),
        (7, ""),
    ] {
        let line = format!(
            "spec.interfaces[{i}]: Invalid value: \"{name}\": '{name}' is not a Linux interface name"
        );
        assert!(r.stderr.contains(&line), "{line} in:\n{}", r.stderr);
    }
    for ok in [0, 8] {
        assert!(
            !r.stderr.contains(&format!("spec.interfaces[{ok}]")),
            "{ok} refused:\n{}",
            r.stderr
        );
    }
    assert_accepted(
        "L2Advertisement",
        r#"{interfaces: ["eth0", "enp0s31f6", "x23456789012345", "br-lan.100"]}"#,
    );
}

/// A controller with its own configuration namespace, and a way to read `Valid` conditions.
struct Env {
    cfg: TestNamespace,
    _ctl: ControllerProc,
}

#[derive(Debug, Clone, PartialEq)]
struct Valid {
    status: String,
    reason: String,
    message: String,
}

impl Env {
    fn new(prefix: &str) -> Env {
        let cfg = TestNamespace::new(prefix);
        let class = format!("test.ferrolb.io/{}", cfg.name);
        let ctl = ControllerProc::start(&cfg.name, &class, &[]);
        Env { cfg, _ctl: ctl }
    }

    fn apply(&self, kind: &str, name: &str, spec: &str) {
        let r = apply_in(&self.cfg.name, kind, name, spec);
        assert!(r.ok, "{kind} {name}: {}", r.stderr);
    }

    fn yaml(&self, yaml: &str) {
        let r = self.cfg.apply(yaml);
        assert!(r.ok, "{yaml}: {}", r.stderr);
    }

    fn valid(&self, kind: &str, name: &str) -> Option<Valid> {
        let r = lab().kubectl(&["get", kind, name, "-n", &self.cfg.name, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
        let c = v["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Valid")?
            .clone();
        Some(Valid {
            status: c["status"].as_str()?.into(),
            reason: c["reason"].as_str()?.into(),
            message: c["message"].as_str()?.into(),
        })
    }

    /// Waits until the object's `Valid` condition has `status` and `reason`.
    fn wait_valid(&self, kind: &str, name: &str, status: &str, reason: &str) -> Valid {
        let mut last = None;
        wait_for(
            &format!("{kind} {name} Valid={status} {reason}"),
            Duration::from_secs(20),
            || {
                last = self.valid(kind, name);
                last.clone()
                    .filter(|v| v.status == status && v.reason == reason)
            },
        )
        .unwrap_or_else(|e| panic!("{e}; last: {last:?}"))
    }

    fn secret(&self, name: &str, ty: &str, data: &str) {
        self.yaml(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: {ty}\nstringData: {data}\n"
        ));
    }

    fn peer(&self, name: &str, address: &str, password_secret: &str) {
        self.apply(
            "BGPPeer",
            name,
            &format!(
                "{{myASN: 64600, peerASN: 64512, peerAddress: \"{address}\", passwordSecret: {password_secret}}}"
            ),
        );
    }
}

/// CEL sees a range by its two ends only; validation sees all of it.
#[test]
fn a_range_spanning_an_unusable_block_is_not_valid() {
    let e = Env::new("val-span");
    e.apply(
        "IPAddressPool",
        "span",
        r#"{addresses: ["198.18.41.0/24", "126.255.255.250-128.0.0.5"]}"#,
    );
    e.apply(
        "IPAddressPool",
        "fine",
        r#"{addresses: ["198.18.42.0/24"]}"#,
    );
    let v = e.wait_valid("ipaddresspool", "span", "False", "UnusableAddresses");
    assert!(
        v.message
            .contains("'126.255.255.250-128.0.0.5' overlaps 127.0.0.0/8 (loopback)")
            && v.message
                .contains("list only unicast addresses outside these blocks")
            && !v.message.contains("198.18.41.0"),
        "{}",
        v.message
    );
    e.wait_valid("ipaddresspool", "fine", "True", "Valid");
}

/// MetalLB splits a range into CIDRs; an aggregate shorter than any of them would advertise
/// addresses outside the pool (198.18.10.5-198.18.10.9 under /28 is 198.18.10.0/28).
#[test]
fn aggregation_is_validated_per_cidr_of_a_range() {
    let e = Env::new("val-agg");
    e.apply(
        "IPAddressPool",
        "range",
        r#"{addresses: ["198.18.10.5-198.18.10.9"]}"#,
    );
    e.apply(
        "BGPAdvertisement",
        "agg28",
        "{ipAddressPools: [range], aggregationLength: 28}",
    );
    e.apply(
        "BGPAdvertisement",
        "agg32",
        "{ipAddressPools: [range], aggregationLength: 32}",
    );
    let v = e.wait_valid("bgpadvertisement", "agg28", "False", "AggregationTooShort");
    for part in [
        "aggregationLength 28 would advertise 198.18.10.0/28",
        "outside pool range",
        "'198.18.10.5-198.18.10.9'",
        "198.18.10.5/32",
        "set aggregationLength to 32 or more",
    ] {
        assert!(v.message.contains(part), "{part}: {}", v.message);
    }
    e.wait_valid("bgpadvertisement", "agg32", "True", "Valid");
}

/// FerroLB reads Secrets only from its own namespace: naming another is refused by name, and
/// naming its own (what a ported MetalLB configuration does) works.
#[test]
fn password_secret_namespace_is_honoured_or_refused() {
    let e = Env::new("val-ns");
    let ns = e.cfg.name.clone();
    e.secret("md5", "kubernetes.io/basic-auth", "{password: s3cret}");
    e.peer(
        "elsewhere",
        "198.18.0.2",
        "{name: md5, namespace: metallb-system}",
    );
    e.peer(
        "here",
        "198.18.0.3",
        &format!("{{name: md5, namespace: {ns}}}"),
    );
    e.peer("default", "198.18.0.4", "{name: md5}");
    let v = e.wait_valid("bgppeer", "elsewhere", "False", "PasswordSecretNamespace");
    assert_eq!(
        v.message,
        format!(
            "passwordSecret.namespace is metallb-system, but FerroLB reads Secrets only from its own namespace {ns}; remove passwordSecret.namespace or set it to {ns}"
        )
    );
    e.wait_valid("bgppeer", "here", "True", "Valid");
    e.wait_valid("bgppeer", "default", "True", "Valid");
}

#[test]
fn a_peer_whose_password_secret_is_missing_says_so() {
    let e = Env::new("val-nosecret");
    e.peer("p", "198.18.0.2", "{name: md5}");
    let v = e.wait_valid("bgppeer", "p", "False", "PasswordSecretNotFound");
    assert!(
        v.message.contains("passwordSecret md5 not found")
            && v.message.contains("kubernetes.io/basic-auth")
            && v.message.contains(&e.cfg.name),
        "{}",
        v.message
    );
    // Creating it makes the peer valid, without touching the peer.
    e.secret("md5", "kubernetes.io/basic-auth", "{password: s3cret}");
    e.wait_valid("bgppeer", "p", "True", "Valid");
    // And deleting it again is noticed.
    let r = lab().kubectl(&["delete", "secret", "md5", "-n", &e.cfg.name]);
    assert!(r.ok, "{}", r.stderr);
    e.wait_valid("bgppeer", "p", "False", "PasswordSecretNotFound");
}

#[test]
fn a_peer_whose_password_secret_is_malformed_says_why() {
    let e = Env::new("val-badsecret");
    // Of the wrong type: not read at all (only kubernetes.io/basic-auth Secrets are).
    e.secret("opaque", "Opaque", "{password: s3cret}");
    e.peer("opaque", "198.18.0.2", "{name: opaque}");
    let v = e.wait_valid("bgppeer", "opaque", "False", "PasswordSecretNotFound");
    assert!(
        v.message.contains("a Secret of another type is not read"),
        "{}",
        v.message
    );
    // Of the right type, without a password.
    e.secret("nopass", "kubernetes.io/basic-auth", "{username: ferrolb}");
    e.peer("nopass", "198.18.0.3", "{name: nopass}");
    let v = e.wait_valid("bgppeer", "nopass", "False", "PasswordSecretInvalid");
    assert_eq!(
        v.message,
        "passwordSecret nopass has no 'password' key: put the TCP MD5 password under 'password'"
    );
    // A password that is not text.
    e.yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: binary}\ntype: kubernetes.io/basic-auth\ndata: {password: //4=}\n",
    );
    e.peer("binary", "198.18.0.4", "{name: binary}");
    let v = e.wait_valid("bgppeer", "binary", "False", "PasswordSecretInvalid");
    assert!(v.message.contains("is not UTF-8"), "{}", v.message);
    // Fixed in place: valid.
    e.secret(
        "nopass",
        "kubernetes.io/basic-auth",
        "{username: ferrolb, password: s3cret}",
    );
    e.wait_valid("bgppeer", "nopass", "True", "Valid");
}
