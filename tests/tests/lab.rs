//! The lab itself: a real control plane that allocates NodePorts, a routed L2 segment between
//! node hosts, and real FRR and BIRD routers.

use std::time::Duration;

use ferrolb_tests::{lab, unique, wait_for};

#[test]
fn api_server_is_ready() {
    let r = lab().kubectl(&["get", "--raw", "/readyz"]);
    assert!(r.ok && r.stdout.trim() == "ok", "{r:?}");
}

#[test]
fn load_balancer_service_gets_a_node_port() {
    let name = unique("np");
    let r = lab().kubectl_in(
        &["apply", "-n", "default", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: LoadBalancer\n  \
             loadBalancerClass: example.com/none\n  ports: [{{port: 80, protocol: TCP}}]\n  selector: {{app: {name}}}\n"
        ),
    );
    assert!(r.ok, "{}", r.stderr);
    let port = lab().kubectl(&[
        "get",
        "svc",
        "-n",
        "default",
        &name,
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    let n: u16 = port.stdout.trim().parse().expect("nodePort is a number");
    assert!((30000..=32767).contains(&n), "nodePort {n}");
    lab().kubectl(&["delete", "svc", "-n", "default", &name, "--wait=false"]);
}

#[test]
fn node_hosts_reach_each_other_on_the_segment() {
    for (from, to) in [
        ("flb-node1", "198.18.0.12"),
        ("flb-node2", "198.18.0.13"),
        ("flb-node3", "fd00:18::11"),
    ] {
        let r = lab().exec(from, &["ping", "-c1", "-W2", to]);
        assert!(r.ok, "{from} -> {to}: {}{}", r.stdout, r.stderr);
    }
    let r = lab().kubectl(&["get", "nodes", "-o", "name"]);
    for n in ["flb-node1", "flb-node2", "flb-node3"] {
        assert!(r.stdout.contains(&format!("node/{n}")), "{}", r.stdout);
    }
}

#[test]
fn routers_run() {
    let frr = wait_for("FRR answers", Duration::from_secs(10), || {
        let r = lab().exec("flb-frr", &["true"]);
        let v = std::process::Command::new(ferrolb_tests::repo().join("hack/lab"))
            .args(["frr", "show", "bgp", "summary"])
            .output()
            .ok()?;
        (r.ok && v.status.success()).then(|| String::from_utf8_lossy(&v.stdout).into_owned())
    })
    .unwrap();
    assert!(frr.contains("64512"), "{frr}");
    let bird = std::process::Command::new(ferrolb_tests::repo().join("hack/lab"))
        .args(["bird", "show", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bird.stdout);
    assert!(
        bird.status.success() && text.contains("Daemon is up and running"),
        "{text}"
    );
}
