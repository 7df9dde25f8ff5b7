//! The lab itself: a real control plane that allocates NodePorts, real nodes (kubelet, containerd,
//! kube-proxy) whose pods get addresses from their node's pod CIDR and reach each other across
//! nodes, a routed L2 segment between node hosts, and real FRR and BIRD routers.

use std::time::Duration;

use ferrolb_tests::{TestNamespace, backend::agnhost_image, lab, repo, unique, wait_for};

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

/// The pod CIDRs hack/lib/network.sh gives flb-nodeN.
fn pod_cidrs(n: u8) -> [String; 2] {
    [
        format!("198.18.{}.0/24", 64 + n),
        format!("fd00:64:0:{n}::/64"),
    ]
}

#[test]
fn nodes_are_kubelets_of_the_pinned_release_on_containerd_2() {
    let gomod = std::fs::read_to_string(repo().join("hack/k8s/go.mod")).unwrap();
    let version = gomod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes "))
        .and_then(|v| v.split_whitespace().next())
        .expect("hack/k8s/go.mod requires k8s.io/kubernetes")
        .to_string();
    for n in 1..=3u8 {
        let node = format!("flb-node{n}");
        let r = lab().kubectl(&[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.nodeInfo.kubeletVersion} \
             {.status.nodeInfo.kubeProxyVersion} {.status.nodeInfo.containerRuntimeVersion} {.spec.podCIDRs[*]} \
             {.status.addresses[?(@.type==\"InternalIP\")].address}",
        ]);
        assert!(r.ok, "{}", r.stderr);
        let want = format!(
            "True {version} {version} containerd://2.2.9 {} {} 198.18.0.1{n} fd00:18::1{n}",
            pod_cidrs(n)[0],
            pod_cidrs(n)[1]
        );
        // kubeProxyVersion is deprecated and may be empty; compare the rest exactly.
        let got = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        let want_no_proxy = want.replacen(&format!("{version} {version}"), &version, 1);
        assert!(
            got == want || got == want_no_proxy,
            "{node}: got '{got}', want '{want}'"
        );
    }
}

#[test]
fn pods_get_their_node_addresses_reach_each_other_and_a_cluster_ip() {
    let ns = TestNamespace::new("pods");
    let image = agnhost_image();
    let mut yaml = String::new();
    for n in 1..=3 {
        yaml += &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{n}, labels: {{app: pods}}}}\nspec:\n  \
             nodeSelector: {{kubernetes.io/hostname: flb-node{n}}}\n  terminationGracePeriodSeconds: 1\n  \
             containers:\n  - {{name: a, image: '{image}', imagePullPolicy: IfNotPresent, \
             args: [netexec, --http-port=8080]}}\n---\n"
        );
    }
    yaml += "apiVersion: v1\nkind: Service\nmetadata: {name: pods}\nspec:\n  \
             ipFamilyPolicy: PreferDualStack\n  selector: {app: pods}\n  ports: [{port: 80, targetPort: 8080}]\n";
    let r = ns.apply(&yaml);
    assert!(r.ok, "{}", r.stderr);
    let r = lab().kubectl(&[
        "wait",
        "-n",
        &ns.name,
        "--for=condition=Ready",
        "pod",
        "--all",
        "--timeout=60s",
    ]);
    assert!(r.ok, "pods not Ready: {}{}", r.stdout, r.stderr);

    let mut ips = Vec::new();
    for n in 1..=3u8 {
        let r = lab().kubectl(&[
            "get",
            "pod",
            "-n",
            &ns.name,
            &format!("p{n}"),
            "-o",
            "jsonpath={.status.podIPs[*].ip}",
        ]);
        let got: Vec<String> = r.stdout.split_whitespace().map(String::from).collect();
        let [v4, v6] = pod_cidrs(n);
        assert_eq!(
            got.len(),
            2,
            "p{n} on flb-node{n}: addresses {got:?} (want one of each family)"
        );
        let net4: ipnet::IpNet = v4.parse().unwrap();
        let net6: ipnet::IpNet = v6.parse().unwrap();
        for ip in &got {
            let a: std::net::IpAddr = ip.parse().unwrap();
            assert!(
                net4.contains(&a) || net6.contains(&a),
                "p{n}: {ip} is outside {v4} and {v6}"
            );
        }
        ips.push(got);
    }
    // Across nodes: flb-node1 to the pod on flb-node3, both families (routes via the node).
    for ip in &ips[2] {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.clone()
        };
        let r = lab().exec(
            "flb-node1",
            &[
                "curl",
                "-sS",
                "--max-time",
                "2",
                &format!("http://{host}:8080/hostname"),
            ],
        );
        assert!(
            r.ok && r.stdout.trim() == "p3",
            "flb-node1 -> p3 at {ip}: {r:?}"
        );
    }
    // A ClusterIP from a node: kube-proxy's rules send it to one of the three pods.
    let cip = lab().kubectl(&[
        "get",
        "svc",
        "-n",
        &ns.name,
        "pods",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let url = format!("http://{}/hostname", cip.stdout.trim());
    let who = wait_for(
        "the ClusterIP answers from flb-node2",
        Duration::from_secs(20),
        || {
            let r = lab().exec("flb-node2", &["curl", "-sS", "--max-time", "1", &url]);
            (r.ok && r.stdout.trim().starts_with('p')).then(|| r.stdout.trim().to_string())
        },
    )
    .unwrap();
    assert!(["p1", "p2", "p3"].contains(&who.as_str()), "{who}");
    // The API server reaches the kubelets (kubectl logs goes through the kubelet on flb-node3).
    let r = lab().kubectl(&["logs", "-n", &ns.name, "p3"]);
    assert!(r.ok, "kubectl logs: {}", r.stderr);
}
