//! Real backends for the e2e tests: a Deployment of Kubernetes' agnhost (`netexec`: `/hostname`
//! answers with the pod's name, `/clientip` with the caller's `ip:port`) behind a LoadBalancer
//! Service with a selector, in a namespace of its own, so that traffic takes the whole data path:
//! client → EXTERNAL-IP → node → kube-proxy → pod. Plus what the tests ask of that path: HTTP from
//! the lab's client host, which pod (and so which node) answered, routes on the client.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Ran, TestNamespace, kind, lab, repo, run, wait_for};

/// The Service (and Deployment, and `app` label) name in a backend's namespace.
pub const NAME: &str = "web";

/// The agnhost image: `FERROLB_E2E_AGNHOST_IMAGE` when set (kind), else the one the lab builds
/// and imports into every node, `ferrolb.io/lab/agnhost:<k8s.io/kubernetes version of
/// hack/k8s/go.mod>` (hack/lib/images.sh `lab_agnhost_image`).
pub fn agnhost_image() -> String {
    if let Ok(img) = std::env::var("FERROLB_E2E_AGNHOST_IMAGE")
        && !img.is_empty()
    {
        return img;
    }
    let gomod = repo().join("hack/k8s/go.mod");
    let text = std::fs::read_to_string(&gomod)
        .unwrap_or_else(|e| panic!("reading {}: {e}", gomod.display()));
    let version = k8s_version(&text)
        .unwrap_or_else(|| panic!("{} requires no k8s.io/kubernetes", gomod.display()));
    format!("ferrolb.io/lab/agnhost:{version}")
}

/// The version of `k8s.io/kubernetes` a go.mod requires (in a `require (...)` block or on a
/// `require` line).
fn k8s_version(gomod: &str) -> Option<String> {
    gomod.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["k8s.io/kubernetes", v, ..] | ["require", "k8s.io/kubernetes", v, ..] => {
                Some(v.to_string())
            }
            _ => None,
        }
    })
}

/// How to make a [`Backend`].
#[derive(Clone, Debug)]
pub struct Spec {
    pub replicas: u32,
    /// Pin the pods to this node (`nodeSelector: {kubernetes.io/hostname: NODE}`).
    pub node: Option<String>,
    /// At most one pod per node (required pod anti-affinity on `kubernetes.io/hostname`).
    pub one_per_node: bool,
    /// `Cluster` or `Local`.
    pub policy: &'static str,
    /// `PreferDualStack` with `[IPv4, IPv6]` (else the cluster's default: IPv4 only).
    pub dual_stack: bool,
    /// The `ferrolb.io/address-pool` annotation.
    pub pool: Option<String>,
    /// `allocateLoadBalancerNodePorts` (Kubernetes' default: true).
    pub node_ports: bool,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            replicas: 1,
            node: None,
            one_per_node: false,
            policy: "Cluster",
            dual_stack: false,
            pool: None,
            node_ports: true,
        }
    }
}

impl Spec {
    /// A pod on each lab node (one per node), addresses from `pool`.
    pub fn one_per_node(pool: &str) -> Spec {
        Spec {
            replicas: crate::NODES.len() as u32,
            one_per_node: true,
            pool: Some(pool.to_string()),
            ..Spec::default()
        }
    }
}

/// A pod of a backend, as the API server shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    /// `spec.nodeName` (empty while unscheduled).
    pub node: String,
    pub ready: bool,
    /// Being deleted (`metadata.deletionTimestamp` set).
    pub terminating: bool,
}

/// agnhost pods behind a LoadBalancer Service, in a namespace of their own (deleted when dropped).
pub struct Backend {
    pub ns: TestNamespace,
    pub spec: Spec,
}

impl Backend {
    /// Creates the Deployment and the Service (does not wait: see [`wait_ready`](Self::wait_ready)).
    pub fn new(spec: Spec) -> Backend {
        let ns = TestNamespace::new("e2e");
        let b = Backend { ns, spec };
        let r = b.ns.apply(&b.deployment_yaml());
        assert!(r.ok, "applying the Deployment: {}", r.stderr);
        let r = b.ns.apply(&b.service_yaml());
        assert!(r.ok, "applying the Service: {}", r.stderr);
        b
    }

    fn deployment_yaml(&self) -> String {
        let s = &self.spec;
        let node = match &s.node {
            Some(n) => format!("      nodeSelector: {{kubernetes.io/hostname: {n}}}\n"),
            None => String::new(),
        };
        let spread = if s.one_per_node {
            format!(
                "      affinity:\n        podAntiAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n\
                 \x20           - labelSelector: {{matchLabels: {{app: {NAME}}}}}\n\
                 \x20             topologyKey: kubernetes.io/hostname\n"
            )
        } else {
            String::new()
        };
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {NAME}}}\nspec:\n  replicas: {replicas}\n  \
             selector: {{matchLabels: {{app: {NAME}}}}}\n  template:\n    metadata: {{labels: {{app: {NAME}}}}}\n    spec:\n      \
             terminationGracePeriodSeconds: 1\n{node}{spread}      containers:\n        - name: agnhost\n          \
             image: {image}\n          imagePullPolicy: IfNotPresent\n          args: [netexec, --http-port=8080]\n          \
             ports: [{{name: http, containerPort: 8080}}]\n          readinessProbe:\n            \
             httpGet: {{path: /healthz, port: http}}\n            periodSeconds: 1\n",
            replicas = s.replicas,
            image = agnhost_image(),
        )
    }

    fn service_yaml(&self) -> String {
        let s = &self.spec;
        let annotations = match &s.pool {
            Some(p) => format!("  annotations: {{ferrolb.io/address-pool: {p}}}\n"),
            None => String::new(),
        };
        let families = if s.dual_stack {
            "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n"
        } else {
            ""
        };
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {NAME}\n{annotations}spec:\n  type: LoadBalancer\n  \
             externalTrafficPolicy: {policy}\n  allocateLoadBalancerNodePorts: {node_ports}\n{families}  \
             selector: {{app: {NAME}}}\n  ports: [{{name: http, port: 80, targetPort: http, protocol: TCP}}]\n",
            policy = s.policy,
            node_ports = s.node_ports,
        )
    }

    fn kubectl(&self, args: &[&str]) -> Ran {
        let mut a = vec!["-n", self.ns.name.as_str()];
        a.extend_from_slice(args);
        lab().kubectl(&a)
    }

    /// Every pod of the backend, terminating ones included.
    pub fn all_pods(&self) -> Vec<Pod> {
        let r = self.kubectl(&["get", "pods", "-l", &format!("app={NAME}"), "-o", "json"]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        let s = |x: &Value, p: &str| {
            x.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        v.get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| Pod {
                name: s(p, "/metadata/name"),
                node: s(p, "/spec/nodeName"),
                terminating: p.pointer("/metadata/deletionTimestamp").is_some(),
                ready: p
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c.get("type").and_then(Value::as_str) == Some("Ready")
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    }),
            })
            .collect()
    }

    /// The pods that are not being deleted.
    pub fn pods(&self) -> Vec<Pod> {
        self.all_pods()
            .into_iter()
            .filter(|p| !p.terminating)
            .collect()
    }

    /// Pod name → node name, of the pods that are not being deleted.
    pub fn pod_nodes(&self) -> BTreeMap<String, String> {
        self.pods().into_iter().map(|p| (p.name, p.node)).collect()
    }

    /// The node a pod runs on (`spec.nodeName`; None for an unknown pod).
    pub fn node_of(&self, pod: &str) -> Option<String> {
        let r = self.kubectl(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"]);
        let n = r.stdout.trim();
        (r.ok && !n.is_empty()).then(|| n.to_string())
    }

    /// Pods named by the ready endpoints of the Service's EndpointSlices (what kube-proxy and
    /// FerroLB act on), by name, with their nodes.
    pub fn endpoint_pods(&self) -> BTreeMap<String, String> {
        let r = self.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={NAME}"),
            "-o",
            "json",
        ]);
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        let mut out = BTreeMap::new();
        for slice in v
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for ep in slice
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ready = ep.pointer("/conditions/ready").and_then(Value::as_bool) == Some(true);
                let pod = ep.pointer("/targetRef/name").and_then(Value::as_str);
                let node = ep.get("nodeName").and_then(Value::as_str).unwrap_or("");
                if let (true, Some(pod)) = (ready, pod) {
                    out.insert(pod.to_string(), node.to_string());
                }
            }
        }
        out
    }

    /// Waits until exactly `n` pods exist, none terminating, all ready and scheduled as `ok`
    /// wants, and the Service's EndpointSlices list exactly those pods as ready; returns pod
    /// name → node.
    pub fn wait_pods(
        &self,
        n: usize,
        timeout: Duration,
        ok: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        let what = format!("{n} ready pods of {}/{NAME} in its endpoints", self.ns.name);
        wait_for(&what, timeout, || {
            let pods = self.all_pods();
            let done = pods.len() == n && pods.iter().all(|p| p.ready && !p.terminating);
            let map: BTreeMap<String, String> =
                pods.into_iter().map(|p| (p.name, p.node)).collect();
            let r = (done && ok(&map) && self.endpoint_pods() == map).then_some(map);
            slow_poll(r)
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}: pods {:?}, ready endpoints {:?}",
                self.all_pods(),
                self.endpoint_pods()
            )
        })
    }

    /// The pods (name → node) if exactly `n` exist, all ready, none terminating, on `n` distinct
    /// nodes, and the Service's EndpointSlices list exactly them as ready (else what is amiss).
    pub fn spread_ready(&self, n: usize) -> Result<BTreeMap<String, String>, String> {
        let pods = self.all_pods();
        let map: BTreeMap<String, String> = pods
            .iter()
            .map(|p| (p.name.clone(), p.node.clone()))
            .collect();
        let nodes: BTreeSet<&String> = map.values().collect();
        if pods.len() != n || pods.iter().any(|p| !p.ready || p.terminating) || nodes.len() != n {
            return Err(format!("backend pods {pods:?}"));
        }
        let eps = self.endpoint_pods();
        if eps != map {
            return Err(format!("ready endpoints {eps:?}, pods {map:?}"));
        }
        Ok(map)
    }

    /// [`wait_pods`](Self::wait_pods) for the Deployment's replicas (60 s).
    pub fn wait_ready(&self) -> BTreeMap<String, String> {
        self.wait_pods(self.spec.replicas as usize, Duration::from_secs(60), |_| {
            true
        })
    }

    /// The Service's EXTERNAL-IPs (IPv4 first), once allocated (all families it asked for).
    pub fn ips(&self, timeout: Duration) -> Vec<String> {
        let want = if self.spec.dual_stack { 2 } else { 1 };
        wait_for(
            &format!("{want} EXTERNAL-IP(s) of {}/{NAME}", self.ns.name),
            timeout,
            || {
                let r = self.kubectl(&[
                    "get",
                    "svc",
                    NAME,
                    "-o",
                    "jsonpath={.status.loadBalancer.ingress[*].ip}",
                ]);
                let mut ips: Vec<String> = r.stdout.split_whitespace().map(String::from).collect();
                ips.sort_by_key(|ip| ip.contains(':'));
                slow_poll((ips.len() >= want).then_some(ips))
            },
        )
        .unwrap_or_else(|e| panic!("{e}: Service {}", self.describe_service()))
    }

    /// The Service as YAML and its events, for failure messages.
    pub fn describe_service(&self) -> String {
        let r = self.kubectl(&["describe", "svc", NAME]);
        format!("{}{}", r.stdout, r.stderr)
    }

    /// The nodePort allocated to the Service's port.
    pub fn node_port(&self) -> u16 {
        let r = self.kubectl(&[
            "get",
            "svc",
            NAME,
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ]);
        r.stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no nodePort on {}/{NAME}: {r:?}", self.ns.name))
    }

    /// A field (`status`, `reason`, `message`) of the Service's `ferrolb.io/L2Announced`
    /// condition; empty while there is none.
    pub fn l2_condition(&self, field: &str) -> String {
        self.kubectl(&[
            "get",
            "svc",
            NAME,
            "-o",
            &format!(
                r#"jsonpath={{.status.conditions[?(@.type=="ferrolb.io/L2Announced")].{field}}}"#
            ),
        ])
        .stdout
    }

    /// The node the L2 condition names as announcer of `ip` (`... IP from node NODE ...`).
    pub fn l2_announcer(&self, ip: &str) -> Option<String> {
        let msg = self.l2_condition("message");
        msg.split(&format!("{ip} from node "))
            .nth(1)?
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .next()
            .map(str::to_string)
    }

    fn patch_deployment(&self, json: &str) {
        let r = self.kubectl(&["patch", "deployment", NAME, "--type", "merge", "-p", json]);
        assert!(r.ok, "patching deployment {NAME} with {json}: {}", r.stderr);
    }

    /// Sets the Deployment's replicas (does not wait).
    pub fn scale(&mut self, replicas: u32) {
        let r = self.kubectl(&[
            "scale",
            "deployment",
            NAME,
            &format!("--replicas={replicas}"),
        ]);
        assert!(r.ok, "scaling to {replicas}: {}", r.stderr);
        self.spec.replicas = replicas;
    }

    /// Pins the pods to `node` (None: anywhere); the Deployment rolls its pods over (does not
    /// wait).
    pub fn pin(&mut self, node: Option<&str>) {
        let sel = match node {
            Some(n) => format!("{{\"kubernetes.io/hostname\": \"{n}\"}}"),
            None => "null".into(),
        };
        self.patch_deployment(&format!(
            "{{\"spec\": {{\"template\": {{\"spec\": {{\"nodeSelector\": {sel}}}}}}}}}"
        ));
        self.spec.node = node.map(str::to_string);
    }

    /// Sets the Service's `externalTrafficPolicy`.
    pub fn set_policy(&mut self, policy: &'static str) {
        let r = self.kubectl(&[
            "patch",
            "svc",
            NAME,
            "-p",
            &format!("{{\"spec\": {{\"externalTrafficPolicy\": \"{policy}\"}}}}"),
        ]);
        assert!(r.ok, "setting externalTrafficPolicy {policy}: {}", r.stderr);
        self.spec.policy = policy;
    }
}

/// Passes `r` on; pauses first when it is None: polls that run kubectl (a process of ~0.1 s of
/// CPU) wait longer than `wait_for`'s 50 ms between tries, so that tests running side by side
/// leave the lab's two cores to the cluster.
fn slow_poll<T>(r: Option<T>) -> Option<T> {
    if r.is_none() {
        std::thread::sleep(Duration::from_millis(250));
    }
    r
}

/// `http://IP:PORT/PATH` (IPv6 in brackets).
pub fn url(ip: &str, port: u16, path: &str) -> String {
    if ip.contains(':') {
        format!("http://[{ip}]:{port}{path}")
    } else {
        format!("http://{ip}:{port}{path}")
    }
}

/// GET `url` from the lab's client host (`curl -sS --max-time 1`, a new connection each time):
/// the body, or None when the request failed.
pub fn curl_from_client(url: &str) -> Option<String> {
    let curl = ["curl", "-sS", "--max-time", "1", url];
    let r = if kind() {
        lab().exec("flb-client", &curl)
    } else {
        // Straight into the namespace (hack/lab exec costs a shell's start-up per request).
        run(Command::new("ip")
            .args(["netns", "exec", "flb-client"])
            .args(curl))
    };
    r.ok.then(|| r.stdout.trim().to_string())
}

/// Waits until a GET of `url` from the client answers something `ok` accepts; returns it.
pub fn wait_http(url: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    let mut last = None;
    wait_for(&format!("GET {url} from flb-client"), timeout, || {
        let r = curl_from_client(url);
        last = Some(r.clone());
        r.filter(|b| ok(b))
    })
    .unwrap_or_else(|e| panic!("{e}: last answer {last:?}"))
}

/// Waits until GETs of `url` from the client keep failing (`quiet` failures in a row).
pub fn wait_http_fails(url: &str, timeout: Duration, quiet: usize) {
    let mut failures = 0;
    let mut last = None;
    wait_for(
        &format!("GET {url} to fail {quiet} times in a row"),
        timeout,
        || {
            match curl_from_client(url) {
                Some(b) => {
                    failures = 0;
                    last = Some(b);
                }
                None => failures += 1,
            }
            (failures >= quiet).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: still answered {last:?}"));
}

/// `count` GETs of `url` from the client, each on a new connection (a new source port): the
/// bodies of those that answered, and how many failed.
pub fn curl_many(url: &str, count: usize) -> (Vec<String>, usize) {
    let mut bodies = Vec::new();
    let mut failed = 0;
    for _ in 0..count {
        match curl_from_client(url) {
            Some(b) => bodies.push(b),
            None => failed += 1,
        }
    }
    (bodies, failed)
}

/// How many times each value occurs.
pub fn tally<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i.to_string()).or_insert(0) += 1;
    }
    out
}

/// The address part of agnhost's `/clientip` answer (`198.18.0.100:40312`,
/// `[fd00:18::100]:40312`).
pub fn client_addr(clientip: &str) -> String {
    let a = clientip.trim();
    match a.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            host.trim_matches(['[', ']']).to_string()
        }
        _ => a.to_string(),
    }
}

/// A host route on the client (`ip route replace IP/32|128 via GATEWAY`), removed when dropped:
/// e.g. to reach a BGP address through BIRD instead of the client's default router, FRR.
pub struct ClientRoute {
    prefix: String,
}

impl ClientRoute {
    pub fn via(ip: &str, gateway: &str) -> ClientRoute {
        assert!(!kind(), "client routes are a lab feature");
        let prefix = format!("{ip}/{}", if ip.contains(':') { 128 } else { 32 });
        let r = lab().exec(
            "flb-client",
            &["ip", "route", "replace", &prefix, "via", gateway],
        );
        assert!(
            r.ok,
            "flb-client: ip route replace {prefix} via {gateway}: {}",
            r.stderr
        );
        ClientRoute { prefix }
    }
}

impl Drop for ClientRoute {
    fn drop(&mut self) {
        let _ = lab().exec("flb-client", &["ip", "route", "del", &self.prefix]);
    }
}

/// The gateway the client's kernel uses for `ip` right now (`ip route get`; a redirect it
/// followed shows as a node's address), or None for a direct route.
pub fn client_gateway(ip: &str) -> Option<String> {
    let r = lab().exec("flb-client", &["ip", "route", "get", ip]);
    let w: Vec<&str> = r.stdout.split_whitespace().collect();
    w.iter()
        .position(|x| *x == "via")
        .and_then(|i| w.get(i + 1))
        .map(|g| g.to_string())
}

/// Distinct values of a map.
pub fn values(m: &BTreeMap<String, String>) -> BTreeSet<String> {
    m.values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kubernetes_version_of_a_go_mod() {
        let block = "module x\n\nrequire (\n\tk8s.io/api v0.36.3\n\tk8s.io/kubernetes v1.36.3 // indirect\n)\n";
        assert_eq!(k8s_version(block).as_deref(), Some("v1.36.3"));
        assert_eq!(
            k8s_version("require k8s.io/kubernetes v1.35.0\n").as_deref(),
            Some("v1.35.0")
        );
        assert_eq!(k8s_version("require k8s.io/api v0.36.3\n"), None);
    }

    #[test]
    fn splits_client_addresses() {
        assert_eq!(client_addr("198.18.0.100:40312"), "198.18.0.100");
        assert_eq!(client_addr("[fd00:18::100]:40312"), "fd00:18::100");
    }

    #[test]
    fn brackets_ipv6_urls() {
        assert_eq!(url("198.18.0.1", 80, "/x"), "http://198.18.0.1:80/x");
        assert_eq!(url("fd00::1", 31000, "/x"), "http://[fd00::1]:31000/x");
    }
}
