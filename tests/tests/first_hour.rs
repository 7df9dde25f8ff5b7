//! A new operator's first hour (issue 14): warnings mean something is wrong and stays wrong.
//! Applying a pool, an L2Advertisement and a Service in one `kubectl apply -f` gives no
//! Warning; a Service naming a pool that does not exist still gets one, and counts as pending.
//! Each test runs its own controller process (own configuration namespace and
//! `loadBalancerClass`), against the lab's real API server.
//!
//! Run: `cargo test -p ferrolb-tests --test first_hour` (lab up).

use std::time::Duration;

use ferrolb_tests::controller::ControllerProc;
use ferrolb_tests::{TestNamespace, lab, wait_for};

/// The Service's events as `TYPE REASON MESSAGE` lines.
fn events(ns: &str, name: &str) -> String {
    lab()
        .kubectl(&[
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason,MSG:.message",
            "--no-headers",
        ])
        .stdout
}

fn external_ips(ns: &str, name: &str) -> String {
    lab()
        .kubectl(&[
            "get",
            "svc",
            "-n",
            ns,
            name,
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])
        .stdout
        .trim()
        .to_string()
}

/// `ferrolb_controller_services_pending` of the test's controller.
fn pending(ctl: &ControllerProc) -> Option<f64> {
    ctl.http_get("/metrics")?
        .lines()
        .find_map(|l| l.strip_prefix("ferrolb_controller_services_pending "))
        .and_then(|v| v.trim().parse().ok())
}

fn service(ns: &str, name: &str, class: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  \
         annotations: {{ferrolb.io/address-pool: {pool}}}\nspec:\n  type: LoadBalancer\n  \
         loadBalancerClass: {class}\n  allocateLoadBalancerNodePorts: false\n  \
         selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n"
    )
}

#[test]
fn one_apply_of_pool_advertisement_and_service_gives_no_warning() {
    let svc_ns = TestNamespace::new("first-hour");
    let cfg_ns = TestNamespace::new("first-hour-cfg");
    let class = format!("test.ferrolb.io/{}", svc_ns.name);
    let ctl = ControllerProc::start(&cfg_ns.name, &class, &[]);
    wait_for("the controller to lead", Duration::from_secs(30), || {
        ctl.http_get("/metrics")
            .filter(|m| m.contains("ferrolb_controller_leader 1"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ctl.log()));

    // The Service first in the file, as many users write it: it is created before the pool,
    // so the controller decides it before its pool's watch event arrives.
    let (svc, cfg) = (&svc_ns.name, &cfg_ns.name);
    let manifest = format!(
        "{}---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: demo\n  \
         namespace: {cfg}\nspec:\n  addresses: [198.18.26.0/28]\n---\napiVersion: ferrolb.io/v1beta1\n\
         kind: L2Advertisement\nmetadata:\n  name: demo\n  namespace: {cfg}\nspec:\n  \
         ipAddressPools: [demo]\n",
        service(svc, "web", &class, "demo")
    );
    let r = lab().kubectl_in(&["apply", "-f", "-"], &manifest);
    assert!(r.ok, "{}\n{manifest}", r.stderr);
    let ip = wait_for("web's EXTERNAL-IP", Duration::from_secs(20), || {
        Some(external_ips(svc, "web")).filter(|s| !s.is_empty())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ctl.log()));
    assert_eq!(ip, "198.18.26.0");
    // Events trail the status write; give a false alarm time to show.
    let ev = wait_for("web's IPAllocated event", Duration::from_secs(10), || {
        Some(events(svc, "web")).filter(|e| e.contains("IPAllocated"))
    })
    .unwrap_or_else(|e| panic!("{e}: {}", events(svc, "web")));
    std::thread::sleep(Duration::from_secs(2));
    let ev = format!("{ev}{}", events(svc, "web"));
    assert!(
        !ev.lines().any(|l| l.starts_with("Warning")),
        "a Warning for a Service applied with its pool:\n{ev}\ncontroller log:\n{}",
        ctl.log()
    );
    assert_eq!(pending(&ctl), Some(0.0));

    // A pool that truly does not exist: the Warning comes (after the settling grace, 3 s),
    // and the Service counts as pending until it is deleted.
    let r = lab().kubectl_in(
        &["apply", "-f", "-"],
        &service(svc, "lost", &class, "no-such-pool"),
    );
    assert!(r.ok, "{}", r.stderr);
    let ev = wait_for(
        "lost's PoolNotUsable Warning",
        Duration::from_secs(15),
        || {
            Some(events(svc, "lost")).filter(|e| {
                e.lines()
                    .any(|l| l.starts_with("Warning") && l.contains("PoolNotUsable"))
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", events(svc, "lost"), ctl.log()));
    assert!(
        ev.contains("no-such-pool"),
        "the Warning names the pool: {ev}"
    );
    assert_eq!(pending(&ctl), Some(1.0));
    let r = lab().kubectl(&["delete", "svc", "-n", svc, "lost"]);
    assert!(r.ok, "{}", r.stderr);
    wait_for("no Service pending", Duration::from_secs(10), || {
        (pending(&ctl) == Some(0.0)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", pending(&ctl)));
}
