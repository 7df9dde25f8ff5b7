//! L2-mode fixtures shared by the tests and the failover benchmark.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::{
    NODES, Responders, TestNamespace, host_prefix, lab, object_yaml, repo, speaker_metrics, unique,
    wait_for, who_answers,
};

/// The `service.kubernetes.io/service-proxy-name` of L2Case Services: kube-proxy leaves Services
/// with this label alone, so the node that receives a connection for the VIP answers it itself
/// (`Responders`, a TCP responder on each node's `lo` that prints the node's name). These tests
/// check which node FerroLB makes the network deliver to; the e2e tests check the real data path
/// (kube-proxy to pods) on top of that.
pub const STANDIN_PROXY: &str = "ferrolb-test-node-responder";

/// A pool of one or two addresses, an L2Advertisement, and a Service in a namespace of its own,
/// with a hand-made EndpointSlice naming nodes (so a test decides where endpoints are, instantly),
/// answered by `Responders` rather than pods (see STANDIN_PROXY).
pub struct L2Case {
    pub ns: TestNamespace,
    pub name: String,
}

impl L2Case {
    /// `adv_spec` is the L2Advertisement spec without `ipAddressPools` (None: no advertisement).
    pub fn new(
        addresses: &[&str],
        adv_spec: Option<&str>,
        svc_extra: &str,
        endpoint_nodes: &[&str],
    ) -> L2Case {
        let ns = TestNamespace::new("l2");
        let name = unique("l2");
        let addrs = addresses
            .iter()
            .map(|a| format!("'{}'", host_prefix(a)))
            .collect::<Vec<_>>()
            .join(", ");
        let r = lab().apply(&object_yaml(
            "IPAddressPool",
            &name,
            &format!("{{addresses: [{addrs}], autoAssign: false}}"),
        ));
        assert!(r.ok, "{}", r.stderr);
        if let Some(spec) = adv_spec {
            let sep = if spec.trim() == "{}" { "" } else { ", " };
            let spec = spec.trim().trim_start_matches('{').trim_end_matches('}');
            let r = lab().apply(&object_yaml(
                "L2Advertisement",
                &name,
                &format!("{{ipAddressPools: [{name}]{sep}{spec}}}"),
            ));
            assert!(r.ok, "{}", r.stderr);
        }
        let families = if addresses.iter().any(|a| a.contains(':'))
            && addresses.iter().any(|a| !a.contains(':'))
        {
            "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n"
        } else if addresses.iter().all(|a| a.contains(':')) {
            "  ipFamilies: [IPv6]\n"
        } else {
            ""
        };
        let r = ns.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {{ferrolb.io/address-pool: {name}}}\n  \
             labels: {{service.kubernetes.io/service-proxy-name: {STANDIN_PROXY}}}\nspec:\n  \
             type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n  ports: [{{port: 80}}]\n{families}{svc_extra}"
        ));
        assert!(r.ok, "{}", r.stderr);
        let c = L2Case { ns, name };
        c.endpoints(endpoint_nodes);
        c
    }

    /// Replaces the Service's endpoints with one ready endpoint on each of `nodes`.
    pub fn endpoints(&self, nodes: &[&str]) {
        self.ns.web_endpoints(nodes);
    }

    /// The Service's addresses, once allocated.
    pub fn ips(&self) -> Vec<String> {
        self.ns.web_ips(Duration::from_secs(15))
    }

    /// A field (`status`, `reason`, `message`) of the Service's `ferrolb.io/L2Announced`
    /// condition; empty while there is none.
    pub fn condition(&self, field: &str) -> String {
        lab()
            .kubectl(&[
                "get",
                "svc",
                "-n",
                &self.ns.name,
                "web",
                "-o",
                &format!(
                    r#"jsonpath={{.status.conditions[?(@.type=="ferrolb.io/L2Announced")].{field}}}"#
                ),
            ])
            .stdout
    }

    /// The node the Service's L2 condition names as announcer of its primary address.
    pub fn announcer(&self) -> String {
        wait_for("the L2 condition", Duration::from_secs(15), || {
            let msg = self.condition("message");
            let node = msg
                .split("from node ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_string();
            NODES.contains(&node.as_str()).then_some(node)
        })
        .expect("announced")
    }
}

impl Drop for L2Case {
    fn drop(&mut self) {
        for kind in ["l2advertisement", "ipaddresspool"] {
            let _ = lab().kubectl(&[
                "delete",
                kind,
                "-n",
                ferrolb_crds::DEFAULT_NAMESPACE,
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

/// An [`L2Case`] on one address (a plain L2Advertisement) with endpoints on `nodes`, answered by
/// [`Responders`]: the case, its address and the responders (answering while kept).
pub fn answered_case(addr: &str, nodes: &[&str]) -> (L2Case, String, Responders) {
    let case = L2Case::new(&[addr], Some("{}"), "", nodes);
    let vip = case.ips().remove(0);
    let responders = Responders::start(&vip);
    (case, vip, responders)
}

/// Waits until the client reaches the VIP on a node for which `ok` holds; returns that node.
pub fn wait_answer(vip: &str, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    wait_for(what, timeout, || who_answers(vip).filter(|n| ok(n))).unwrap_or_else(|e| panic!("{e}"))
}

/// Keeps a speaker's supervisor from restarting it until dropped (a node that stays down).
pub struct Hold(std::path::PathBuf);

impl Hold {
    pub fn speaker(node: &str) -> Hold {
        let p = repo().join(format!(".lab/pids/speaker-{node}.pid.hold"));
        std::fs::write(&p, "").expect("hold file");
        Hold(p)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn signal_speaker(node: &str, sig: &str) {
    let pid = lab().pid(&format!("speaker-{node}")).expect("speaker pid");
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits for the speaker of `node` to run again (after its hold is released).
pub fn wait_speaker_back(node: &str, old_pid: i32) {
    wait_for("the speaker to restart", Duration::from_secs(10), || {
        lab()
            .pid(&format!("speaker-{node}"))
            .ok()
            .filter(|p| *p != old_pid)
    })
    .expect("speaker restarted");
    std::thread::sleep(Duration::from_millis(1500));
}

/// Members each speaker sees (its `ferrolb_speaker_members` metric), by node (None: no answer).
pub fn members_seen() -> Vec<Option<u64>> {
    NODES
        .iter()
        .map(|n| {
            speaker_metrics(n)
                .lines()
                .find_map(|l| l.strip_prefix("ferrolb_speaker_members "))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Waits until every speaker sees every other (the membership has merged after a fault).
pub fn wait_membership_whole(timeout: Duration) {
    let whole = Some(NODES.len() as u64);
    wait_for("every speaker to see every other", timeout, || {
        members_seen().iter().all(|m| *m == whole).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", members_seen()));
}

/// An address the client host uses itself, on its eth0 (as a forgotten static IP would be): it
/// then answers ARP / NDP for it. Removed when dropped.
pub struct ClientAddress(String);

impl ClientAddress {
    pub fn add(addr: &str) -> ClientAddress {
        let with_prefix = host_prefix(addr);
        let mut args = vec!["ip", "addr", "replace", &with_prefix, "dev", "eth0"];
        if addr.contains(':') {
            args.push("nodad");
        }
        let r = lab().exec("flb-client", &args);
        assert!(r.ok, "adding {addr} on the client: {}", r.stderr);
        ClientAddress(with_prefix)
    }
}

impl Drop for ClientAddress {
    fn drop(&mut self) {
        let _ = lab().exec("flb-client", &["ip", "addr", "del", &self.0, "dev", "eth0"]);
    }
}

/// The MAC of one of the client host's interfaces.
pub fn client_mac(iface: &str) -> String {
    let path = format!("/sys/class/net/{iface}/address");
    lab()
        .exec("flb-client", &["cat", &path])
        .stdout
        .trim()
        .to_string()
}

/// The conflicts a Service's `L2Announced` condition reports (its reason is AddressConflict).
pub fn address_conflicts(case: &L2Case) -> Vec<ferrolb_crds::service::AddressConflict> {
    if case.condition("reason") != ferrolb_crds::service::ADDRESS_CONFLICT {
        return Vec::new();
    }
    case.condition("message")
        .split("; ")
        .filter_map(ferrolb_crds::service::AddressConflict::parse)
        .collect()
}

/// `ferrolb_speaker_address_conflicts_total` of a node's speaker for an interface and family.
pub fn conflicts_counted(node: &str, iface: &str, family: &str) -> u64 {
    let series = format!(
        "ferrolb_speaker_address_conflicts_total{{interface=\"{iface}\",family=\"{family}\"}} "
    );
    speaker_metrics(node)
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The MACs that answer ARP (IPv4) or NDP (IPv6) for `addr` as seen from `host`'s eth0: every
/// answer within about a second, not only the first.
pub fn answering_macs(host: &str, addr: &str) -> BTreeSet<String> {
    let r = if addr.contains(':') {
        lab().exec(host, &["ndisc6", "-r2", "-w500", addr, "eth0"])
    } else {
        lab().exec(host, &["arping", "-c2", "-w1", "-i", "eth0", addr])
    };
    r.stdout
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ')' || c == '(')
        .filter(|w| w.len() == 17 && w.matches(':').count() == 5)
        .map(str::to_string)
        .collect()
}
