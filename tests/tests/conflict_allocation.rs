//! Pools that avoid addresses in conflict (`avoidConflictingIPs`, issue 13), against the lab's
//! API server with a controller of the test's own. The speaker's report is simulated: the test
//! writes the Service's `ferrolb.io/L2Announced` condition (status False, reason
//! `AddressConflict`) as the speaker does, with its own field manager; the real detection path is
//! tested with the speaker.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_crds::IPAddressPool;
use ferrolb_crds::service::{ADDRESS_CONFLICT, AddressConflict, IP_ALLOCATED, L2_ANNOUNCED};
use ferrolb_tests::controller::{ControllerProc, events};
use ferrolb_tests::{TestNamespace, lab, object_yaml, repo};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const MAC: &str = "02:00:c6:12:3d:09";

struct Env {
    svc_ns: TestNamespace,
    cfg_ns: TestNamespace,
    class: String,
    ctl: ControllerProc,
    client: kube::Client,
}

impl Env {
    async fn new(prefix: &str, pool_spec: &str) -> Env {
        // The lab installs the CRDs when it comes up; this test needs the pool's new fields, so
        // it installs the CRDs of this tree as `hack/lab up` would.
        let crds = repo().join("crds/ferrolb-crds.yaml");
        let r = lab().kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().expect("path"),
        ]);
        assert!(r.ok, "CRDs: {}", r.stderr);
        let svc_ns = TestNamespace::new(prefix);
        let cfg_ns = TestNamespace::new(&format!("{prefix}-cfg"));
        let r = cfg_ns.apply(&object_yaml("IPAddressPool", "p", pool_spec));
        assert!(r.ok, "pool: {}", r.stderr);
        let class = format!("test.ferrolb.io/{}", svc_ns.name);
        let ctl = ControllerProc::start(&cfg_ns.name, &class, &[]);
        let client = lab().client().await.expect("client");
        Env {
            svc_ns,
            cfg_ns,
            class,
            ctl,
            client,
        }
    }

    /// A LoadBalancer Service of this test's class, asking for `ip` if given.
    fn service(&self, name: &str, ip: Option<&str>) {
        let ann = ip
            .map(|ip| format!("  annotations: {{ferrolb.io/loadBalancerIPs: \"{ip}\"}}\n"))
            .unwrap_or_default();
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{ann}spec:\n  type: LoadBalancer\n  \
             loadBalancerClass: {}\n  allocateLoadBalancerNodePorts: false\n  selector: {{app: {name}}}\n  \
             ports: [{{port: 80}}]\n",
            self.class
        );
        let r = self.svc_ns.apply(&yaml);
        assert!(r.ok, "service {name}: {}", r.stderr);
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.svc_ns.name)
    }

    /// Writes what a speaker writes when another host answers for `ip`: the `L2Announced`
    /// condition, with a field manager of its own (the controller's condition stays).
    async fn report_conflict(&self, name: &str, ip: &str) {
        let c = AddressConflict {
            address: ip.parse().expect("ip"),
            mac: MAC.into(),
            node: "flb-node2".into(),
            interface: "eth1".into(),
        };
        let body = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": self.svc_ns.name},
            "status": {"conditions": [{
                "type": L2_ANNOUNCED,
                "status": "False",
                "reason": ADDRESS_CONFLICT,
                "message": AddressConflict::message(&[c]),
                "lastTransitionTime": "2026-11-30T00:00:00Z",
            }]},
        });
        self.services()
            .patch_status(
                name,
                &PatchParams::apply("ferrolb-test-speaker").force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("status patch");
    }

    /// Waits until the Service satisfies `pred`; panics with it and the controller log.
    async fn wait(&self, name: &str, what: &str, pred: impl Fn(&Service) -> bool) -> Service {
        let start = Instant::now();
        loop {
            let s = self.services().get(name).await.expect("service");
            if pred(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "{name}: timed out waiting for {what}\nservice: {}\ncontroller log:\n{}",
                    serde_json::to_string_pretty(&s.status).unwrap_or_default(),
                    self.ctl.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ips(&self, name: &str, want: &[&str]) -> Service {
        let want: Vec<IpAddr> = want.iter().map(|s| s.parse().expect("ip")).collect();
        self.wait(name, &format!("addresses {want:?}"), |s| ips(s) == want)
            .await
    }

    async fn pool(&self) -> IPAddressPool {
        let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &self.cfg_ns.name);
        api.get("p").await.expect("pool")
    }

    /// Waits until the pool's status shows `n` addresses in conflict.
    async fn wait_pool_conflicts(&self, n: i64) -> IPAddressPool {
        let start = Instant::now();
        loop {
            let p = self.pool().await;
            let st = p.status.clone().unwrap_or_default();
            if st.addresses_in_conflict == n && st.conflicts.len() as i64 == n {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "pool status never showed {n} conflicts: {st:?}\ncontroller log:\n{}",
                self.ctl.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn events(&self, name: &str) -> String {
        events(&self.svc_ns.name, name)
    }
}

fn ips(s: &Service) -> Vec<IpAddr> {
    ferrolb_crds::service::ingress_ips(s)
}

fn allocated(s: &Service) -> Condition {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == IP_ALLOCATED))
        .cloned()
        .expect("IPAllocated condition")
}

#[tokio::test]
async fn an_avoiding_pool_moves_the_service_and_never_hands_the_address_out() {
    let e = Env::new(
        "conflict-on",
        "{addresses: [198.18.61.0/29], avoidConflictingIPs: true}",
    )
    .await;
    e.service("a", None);
    e.wait_ips("a", &["198.18.61.0"]).await;

    e.report_conflict("a", "198.18.61.0").await;
    let a = e.wait_ips("a", &["198.18.61.1"]).await;
    let c = allocated(&a);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "IPAllocated")
    );
    assert_eq!(
        c.message,
        format!(
            "allocated 198.18.61.1 from pool p; moved because 198.18.61.0 is in use by another \
             host (MAC {MAC}) seen by node flb-node2 on eth1"
        )
    );
    let p = e.wait_pool_conflicts(1).await;
    let st = p.status.unwrap_or_default();
    let entry = &st.conflicts[0];
    assert_eq!(
        (
            entry.address.as_str(),
            entry.mac.as_str(),
            entry.node.as_str()
        ),
        ("198.18.61.0", MAC, "flb-node2")
    );
    assert_eq!(entry.services, [format!("{}/a", e.svc_ns.name)]);
    // 8 addresses, 1 held, 1 in conflict.
    assert_eq!(st.available_ipv4, 6, "{st:?}");
    let metrics = e.ctl.http_get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains("ferrolb_allocator_addresses_in_conflict{pool=\"p\",family=\"IPv4\"} 1"),
        "{metrics}"
    );
    let start = Instant::now();
    while !e.events("a").contains("moved because") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no event says why a moved: {}",
            e.events("a")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A report about an address the Service does not hold counts for nothing.
    e.report_conflict("a", "198.18.61.5").await;
    // A new Service never gets the address in conflict, not even after a controller restart
    // (the memory is read back from the pool's status).
    e.service("b", None);
    e.wait_ips("b", &["198.18.61.2"]).await;
    let mut e = e;
    e.ctl.restart_hard();
    e.service("c", None);
    e.wait_ips("c", &["198.18.61.3"]).await;
    let st = e.wait_pool_conflicts(1).await.status.unwrap_or_default();
    assert_eq!(st.conflicts[0].address, "198.18.61.0");
    // The moved Service still says why, after the restart.
    let a = e.services().get("a").await.expect("a");
    assert!(allocated(&a).message.contains("moved because 198.18.61.0"));

    // A Service that asks for the address gets it, keeps it when reported, and says so.
    e.service("w", Some("198.18.61.0"));
    e.wait_ips("w", &["198.18.61.0"]).await;
    e.report_conflict("w", "198.18.61.0").await;
    let w = e
        .wait("w", "the conflict explained", |s| {
            allocated(s).message.contains("kept as requested although")
        })
        .await;
    assert_eq!(ips(&w), ["198.18.61.0".parse::<IpAddr>().unwrap()]);

    // Turning the option off forgets the pool's conflicts.
    let r = e.cfg_ns.apply(&object_yaml(
        "IPAddressPool",
        "p",
        "{addresses: [198.18.61.0/29], avoidConflictingIPs: false}",
    ));
    assert!(r.ok, "{}", r.stderr);
    e.wait_pool_conflicts(0).await;
}

#[tokio::test]
async fn without_the_option_nothing_changes() {
    let e = Env::new("conflict-off", "{addresses: [198.18.62.0/29]}").await;
    e.service("a", None);
    e.wait_ips("a", &["198.18.62.0"]).await;
    e.report_conflict("a", "198.18.62.0").await;
    // The report is seen before b is decided (one watch, one decision loop, in order).
    e.service("b", None);
    e.wait_ips("b", &["198.18.62.1"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = e.services().get("a").await.expect("a");
    assert_eq!(ips(&a), ["198.18.62.0".parse::<IpAddr>().unwrap()]);
    assert_eq!(allocated(&a).message, "allocated 198.18.62.0 from pool p");
    let st = e.pool().await.status.unwrap_or_default();
    assert_eq!(st.addresses_in_conflict, 0, "{st:?}");
    assert!(st.conflicts.is_empty(), "{st:?}");
}
