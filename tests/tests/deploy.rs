//! The install manifests (deploy/), the Helm chart (charts/ferrolb) and the scripts around them,
//! against the lab's real API server: every manifest passes server-side dry-run, Helm renders the
//! same objects as kustomize, the Pod Security levels are what the docs claim, and a controller and
//! a speaker run under their own ServiceAccounts with the RBAC rules of deploy/rbac - so a
//! missing permission fails here, as a 403 in a log or a missing write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrolb_tests::{
    TestNamespace, binary, free_port, lab, neighbour_mac, node_mac, repo, wait_for,
};
use serde_json::Value;

/// `kubectl` against the lab; panics with its stderr unless it succeeds.
fn kubectl_ok(args: &[&str]) -> String {
    let r = lab().kubectl(args);
    assert!(r.ok, "kubectl {}: {}{}", args.join(" "), r.stdout, r.stderr);
    r.stdout
}

fn kubectl_in_ok(args: &[&str], stdin: &str) -> ferrolb_tests::Ran {
    let r = lab().kubectl_in(args, stdin);
    assert!(r.ok, "kubectl {}: {}{}", args.join(" "), r.stdout, r.stderr);
    r
}

/// Runs a repository script; panics with its output unless it succeeds.
fn script(path: &str, args: &[&str]) -> String {
    let out = Command::new(repo().join(path))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{path} runs: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{path} {}: {stdout}{stderr}",
        args.join(" ")
    );
    stdout.into_owned()
}

/// Parses a YAML stream into JSON objects (kubectl does the YAML; nothing is sent to the server).
fn objects(yaml: &str) -> Vec<Value> {
    let r = kubectl_in_ok(
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        yaml,
    );
    serde_json::Deserializer::from_str(&r.stdout)
        .into_iter::<Value>()
        .map(|v| v.expect("kubectl prints JSON"))
        .collect()
}

fn key(o: &Value) -> String {
    let m = &o["metadata"];
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or_default(),
        m["namespace"].as_str().unwrap_or("-"),
        m["name"].as_str().unwrap_or_default()
    )
}

fn kustomize(dir: &str) -> String {
    kubectl_ok(&["kustomize", &repo().join(dir).to_string_lossy()])
}

fn helm(args: &[&str]) -> String {
    script("hack/helm", args)
}

#[test]
fn crd_copies_are_in_sync_with_the_generated_crds() {
    // kustomize cannot read ../crds, Helm only installs the chart's crds/: both hold copies.
    script("hack/sync-deploy", &["--check"]);
}

#[test]
fn scripts_pass_shellcheck() {
    let out = Command::new("shellcheck")
        .args([
            "-x",
            "hack/kind-e2e",
            "hack/sync-deploy",
            "hack/build-static",
            "hack/helm",
            "hack/promtool",
            "hack/lab",
        ])
        .arg("hack/lib/ferrolb.sh")
        .current_dir(repo())
        .output()
        .expect("shellcheck is installed (hack/lab install-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // kind-e2e documents what it needs before anything else.
    let text = std::fs::read_to_string(repo().join("hack/kind-e2e")).unwrap();
    let head: String = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for word in [
        "Prerequisites",
        "docker",
        "kind",
        "kubectl",
        "FERROLB_E2E=kind",
    ] {
        assert!(
            head.contains(word),
            "hack/kind-e2e's header does not mention {word}"
        );
    }
}

#[test]
fn every_manifest_passes_server_side_dry_run() {
    let r = lab().kubectl(&[
        "apply",
        "--dry-run=server",
        "-k",
        &repo().join("deploy").to_string_lossy(),
    ]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let expected = objects(&kustomize("deploy"));
    assert!(expected.len() >= 20, "{} objects", expected.len());
    for o in &expected {
        let kind = o["kind"].as_str().unwrap().to_lowercase();
        let name = o["metadata"]["name"].as_str().unwrap();
        let listed = r.stdout.lines().any(|l| {
            (l.starts_with(&format!("{kind}.")) || l.starts_with(&format!("{kind}/")))
                && l.contains(&format!("/{name} "))
                && l.ends_with("(server dry run)")
        });
        assert!(
            listed,
            "{kind} {name} missing from the dry-run output:\n{}",
            r.stdout
        );
    }
    // Server-side apply too (what docs/install.md and hack/kind-e2e use).
    let r = lab().kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-k",
        &repo().join("deploy").to_string_lossy(),
    ]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
}

#[test]
fn pod_security_levels_are_as_documented() {
    let all = objects(&kustomize("deploy"));
    let ns = all
        .iter()
        .find(|o| o["kind"] == "Namespace")
        .expect("a Namespace");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let workload = |kind: &str, namespace: &str| {
        let mut o = all
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("a {kind}"))
            .clone();
        o["metadata"]["namespace"] = Value::from(namespace);
        o.to_string()
    };
    let dry_run = |ns: &TestNamespace, level: &str, obj: String| {
        kubectl_ok(&[
            "label",
            "namespace",
            &ns.name,
            &format!("pod-security.kubernetes.io/warn={level}"),
        ]);
        let r = kubectl_in_ok(&["apply", "--dry-run=server", "-f", "-"], &obj);
        r.stderr
    };
    // The controller meets "restricted": non-root, no capabilities, no privilege escalation, seccomp.
    let restricted = TestNamespace::new("psa-r");
    let warnings = dry_run(
        &restricted,
        "restricted",
        workload("Deployment", &restricted.name),
    );
    assert!(!warnings.contains("PodSecurity"), "controller: {warnings}");
    // The speaker needs hostNetwork and NET_RAW, and nothing else beyond "baseline".
    let baseline = TestNamespace::new("psa-b");
    let warnings = dry_run(&baseline, "baseline", workload("DaemonSet", &baseline.name));
    assert!(
        warnings.contains("hostNetwork=true") && warnings.contains("\"NET_RAW\""),
        "speaker: {warnings}"
    );
    let line = warnings
        .split("would violate PodSecurity")
        .nth(1)
        .and_then(|l| l.lines().next())
        .unwrap_or_default();
    let violations: Vec<&str> = line
        .split_once(": ")
        .map(|(_, v)| v)
        .unwrap_or_default()
        .split("), ")
        .collect();
    assert_eq!(
        violations.len(),
        2,
        "speaker violates only hostNetwork and NET_RAW: {warnings}"
    );
    // And in a namespace labelled like deploy/namespace.yaml, nothing to warn about.
    let privileged = TestNamespace::new("psa-p");
    let warnings = dry_run(
        &privileged,
        "privileged",
        workload("DaemonSet", &privileged.name),
    );
    assert!(!warnings.contains("PodSecurity"), "{warnings}");
}

/// Removes what only Helm adds, so the two renderings compare equal.
fn strip_helm_labels(o: &mut Value) {
    if let Some(labels) = o["metadata"]
        .get_mut("labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("helm.sh/chart");
        labels.remove("app.kubernetes.io/managed-by");
        if labels.is_empty() {
            o["metadata"].as_object_mut().unwrap().remove("labels");
        }
    }
}

#[test]
fn helm_chart_renders_the_same_objects_as_kustomize() {
    let lint = helm(&[
        "lint",
        "--strict",
        &repo().join("charts/ferrolb").to_string_lossy(),
    ]);
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    let rendered = helm(&[
        "template",
        "ferrolb",
        &repo().join("charts/ferrolb").to_string_lossy(),
        "--namespace",
        "ferrolb-system",
        "--include-crds",
    ]);
    let mut from_helm: BTreeMap<String, Value> = BTreeMap::new();
    for mut o in objects(&rendered) {
        // (CRDs come verbatim from the chart's crds/ folder; everything else is templated.)
        if o["kind"] != "CustomResourceDefinition" {
            assert_eq!(
                o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                "Helm",
                "{}",
                key(&o)
            );
        }
        strip_helm_labels(&mut o);
        assert!(from_helm.insert(key(&o), o).is_none(), "duplicate object");
    }
    let mut from_kustomize: BTreeMap<String, Value> = objects(&kustomize("deploy"))
        .into_iter()
        .map(|o| (key(&o), o))
        .collect();
    // Helm leaves the namespace to `--create-namespace` (a templated Namespace would clash with it).
    assert!(
        from_kustomize
            .remove("Namespace/-/ferrolb-system")
            .is_some()
    );
    let only = |a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>| -> Vec<String> {
        a.keys().filter(|k| !b.contains_key(*k)).cloned().collect()
    };
    assert!(
        from_helm.len() == from_kustomize.len() && only(&from_helm, &from_kustomize).is_empty(),
        "only in Helm: {:?}; only in deploy/: {:?}",
        only(&from_helm, &from_kustomize),
        only(&from_kustomize, &from_helm)
    );
    for (k, want) in &from_kustomize {
        let got = &from_helm[k];
        assert!(
            got == want,
            "{k} differs.\ndeploy/:\n{}\nHelm:\n{}",
            serde_json::to_string_pretty(want).unwrap(),
            serde_json::to_string_pretty(got).unwrap()
        );
    }
    // One version everywhere: workspace, chart, and the image tags.
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let version = cargo
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("workspace version");
    let chart = std::fs::read_to_string(repo().join("charts/ferrolb/Chart.yaml")).unwrap();
    assert!(
        chart.contains(&format!("\nversion: {version}\n"))
            && chart.contains(&format!("appVersion: \"{version}\"")),
        "{chart}"
    );
    for k in [
        "Deployment/ferrolb-system/ferrolb-controller",
        "DaemonSet/ferrolb-system/ferrolb-speaker",
    ] {
        let image = from_kustomize[k]["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert!(image.ends_with(&format!(":{version}")), "{k}: {image}");
    }
}

#[test]
fn helm_values_set_image_log_level_pools_and_speaker_nodes() {
    let ns = TestNamespace::new("helm");
    let values = repo().join(format!("target/deploy-test/{}-values.yaml", ns.name));
    std::fs::create_dir_all(values.parent().unwrap()).unwrap();
    std::fs::write(
        &values,
        "logLevel: debug,ferrolb_speaker=trace\n\
         controller: {image: {repository: registry.example/flb-controller, tag: dev}}\n\
         speaker: {nodeSelector: {ferrolb.io/speaker: \"true\"}}\n\
         pools:\n\
         - {name: lan, addresses: [198.18.47.0/28], l2Advertisement: {interfaces: [eth0]}}\n\
         - {name: routed, addresses: [198.18.48.0/28], autoAssign: false, bgpAdvertisement: {peers: [tor]}}\n\
         - {name: quiet, addresses: [198.18.49.0/28], l2Advertisement: false}\n",
    )
    .unwrap();
    let rendered = helm(&[
        "template",
        "ferrolb",
        &repo().join("charts/ferrolb").to_string_lossy(),
        "--namespace",
        &ns.name,
        "--values",
        &values.to_string_lossy(),
    ]);
    let objs: BTreeMap<String, Value> = objects(&rendered)
        .into_iter()
        .map(|o| (key(&o), o))
        .collect();
    let n = &ns.name;
    let pod = |k: &str| objs[k]["spec"]["template"]["spec"].clone();
    let controller = pod(&format!("Deployment/{n}/ferrolb-controller"));
    assert_eq!(
        controller["containers"][0]["image"],
        "registry.example/flb-controller:dev"
    );
    let speaker = pod(&format!("DaemonSet/{n}/ferrolb-speaker"));
    assert_eq!(speaker["nodeSelector"]["ferrolb.io/speaker"], "true");
    let env = &speaker["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "RUST_LOG" && e["value"] == "debug,ferrolb_speaker=trace"),
        "{env}"
    );
    for k in [
        "IPAddressPool/{n}/lan",
        "L2Advertisement/{n}/lan",
        "IPAddressPool/{n}/routed",
        "BGPAdvertisement/{n}/routed",
        "IPAddressPool/{n}/quiet",
    ] {
        assert!(
            objs.contains_key(&k.replace("{n}", n)),
            "{k} not rendered: {:?}",
            objs.keys()
        );
    }
    assert!(!objs.contains_key(&format!("L2Advertisement/{n}/quiet")));
    assert!(!objs.contains_key(&format!("L2Advertisement/{n}/routed")));
    assert_eq!(
        objs[&format!("L2Advertisement/{n}/lan")]["spec"]["ipAddressPools"][0],
        "lan"
    );
    assert_eq!(
        objs[&format!("IPAddressPool/{n}/routed")]["spec"]["autoAssign"],
        false
    );
    // The pools and advertisements are valid for the API server (schema and CEL rules).
    let pools: String = objs
        .values()
        .filter(|o| o["apiVersion"] == "ferrolb.io/v1beta1")
        .map(|o| format!("---\n{o}\n"))
        .collect();
    let r = lab().kubectl_in(&["apply", "--dry-run=server", "-f", "-"], &pools);
    assert!(
        r.ok && r.stdout.matches("(server dry run)").count() == 5,
        "{}{}",
        r.stdout,
        r.stderr
    );
    let _ = std::fs::remove_file(values);
}

/// deploy/rbac installed in a test namespace: the same rules, with names suffixed by the
/// namespace (ClusterRoles are cluster-wide), and tokens of the two ServiceAccounts.
struct Rbac {
    ns: TestNamespace,
    dir: PathBuf,
}

impl Rbac {
    fn install() -> Rbac {
        let ns = TestNamespace::new("rbac");
        // kustomize only reads bases by relative path, so the overlay lives inside the repository.
        let dir = repo().join("target/deploy-test").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {0}\nnameSuffix: -{0}\n\
                 resources: [../../../deploy/rbac]\n",
                ns.name
            ),
        )
        .unwrap();
        kubectl_ok(&["apply", "-k", &dir.to_string_lossy()]);
        Rbac { ns, dir }
    }

    fn account(&self, component: &str) -> String {
        format!("ferrolb-{component}-{}", self.ns.name)
    }

    /// A kubeconfig that authenticates as the component's ServiceAccount.
    fn kubeconfig(&self, component: &str) -> PathBuf {
        let token = kubectl_ok(&[
            "create",
            "token",
            &self.account(component),
            "-n",
            &self.ns.name,
            "--duration",
            "1h",
        ]);
        let admin = std::fs::read_to_string(&lab().kubeconfig).unwrap();
        let field = |name: &str| {
            admin
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("{name} in the lab kubeconfig"))
                .to_string()
        };
        let path = self.dir.join(format!("{component}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: {}\n    \
                 certificate-authority-data: {}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: lab\n  \
                 context: {{cluster: lab, user: sa}}\ncurrent-context: lab\n",
                field("server"),
                field("certificate-authority-data"),
                token.trim()
            ),
        )
        .unwrap();
        path
    }

    /// `kubectl auth can-i` as the component's ServiceAccount.
    fn can(&self, component: &str, args: &[&str]) -> bool {
        let sa = format!(
            "system:serviceaccount:{}:{}",
            self.ns.name,
            self.account(component)
        );
        let mut all = vec!["auth", "can-i", "--as", &sa];
        all.extend_from_slice(args);
        lab().kubectl(&all).stdout.trim() == "yes"
    }
}

impl Drop for Rbac {
    fn drop(&mut self) {
        // The namespace goes with TestNamespace; the cluster-scoped roles and bindings go here.
        let _ = lab().kubectl(&[
            "delete",
            "-k",
            &self.dir.to_string_lossy(),
            "--ignore-not-found",
            "--wait=false",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A FerroLB process with its output in a log file; SIGTERM, then SIGKILL, when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("process starts");
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log lines that show a refused API request.
    fn denials(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("code: 403") || l.to_lowercase().contains("forbidden"))
            .map(String::from)
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..40 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jsonpath(args: &[&str], path: &str) -> String {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let p = format!("jsonpath={path}");
    all.extend_from_slice(&["-o", &p]);
    lab().kubectl(&all).stdout.trim().to_string()
}

fn wait_value(what: &str, procs: &[&Proc], mut f: impl FnMut() -> Option<String>) -> String {
    wait_for(what, Duration::from_secs(30), &mut f).unwrap_or_else(|e| {
        let logs: Vec<String> = procs
            .iter()
            .map(|p| format!("--- {}\n{}", p.log.display(), p.log()))
            .collect();
        panic!("{e}\n{}", logs.join("\n"))
    })
}

/// The controller and a speaker, each with only its ServiceAccount's token, do everything they do
/// in production: watch, allocate, write statuses, conditions and events, lead, announce, and
/// report BGP sessions - without a single 403.
#[test]
fn controller_and_speaker_work_under_their_service_accounts() {
    const NODE: &str = "flb-node1";
    const VIP: &str = "198.18.0.170";
    let rbac = Rbac::install();
    let cfg = &rbac.ns.name;
    let svc_ns = TestNamespace::new("rbac-svc");
    let class = format!("test.ferrolb.io/{cfg}");
    let logs = repo().join(".lab/logs");
    std::fs::create_dir_all(&logs).unwrap();

    // Configuration: an L2 pool and advertisement, and a BGP peer (nobody listens at .99: the
    // session stays down, but the speaker reports it) with its MD5 password in a Secret.
    let r = lab().kubectl_in(
        &["apply", "-n", cfg, "-f", "-"],
        &format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: rbac}}\n\
             spec: {{addresses: ['{VIP}/32'], autoAssign: false}}\n---\n\
             apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: rbac}}\n\
             spec: {{ipAddressPools: [rbac], interfaces: [eth0]}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: md5}}\ntype: kubernetes.io/basic-auth\n\
             stringData: {{password: rbac-test}}\n---\n\
             apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: nobody}}\n\
             spec: {{myASN: 64600, peerASN: 64512, peerAddress: 198.18.0.99, connectTime: 1s,\n  \
             passwordSecret: {{name: md5}}, nodeSelectors: [{{matchLabels: {{kubernetes.io/hostname: {NODE}}}}}]}}\n"
        ),
    );
    assert!(r.ok, "{}", r.stderr);

    let port = free_port();
    let mut cmd = Command::new(binary("ferrolb-controller"));
    cmd.args([
        "--namespace",
        cfg,
        "--lb-class",
        &class,
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
    ])
    .env("KUBECONFIG", rbac.kubeconfig("controller"))
    .env("POD_NAME", "rbac-test-controller")
    .env("RUST_LOG", "info,ferrolb_controller=debug");
    let controller = Proc::spawn(cmd, &logs.join(format!("test-rbac-controller-{cfg}.log")));

    let member_port = free_port().to_string();
    let speaker_metrics = free_port();
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        NODE,
        &binary("ferrolb-speaker").to_string_lossy(),
    ])
    .args([
        "--namespace",
        cfg,
        "--lb-class",
        &class,
        "--member-port",
        &member_port,
    ])
    // The lab speakers' membership key (hack/lib/ferrolb.sh).
    .arg("--membership-key-file")
    .arg(repo().join(".lab/memberlist-keys"))
    .args(["--metrics-addr", &format!("127.0.0.1:{speaker_metrics}")])
    .env("KUBECONFIG", rbac.kubeconfig("speaker"))
    .env("NODE_NAME", NODE)
    .env("RUST_LOG", "info,ferrolb_speaker=debug");
    let speaker = Proc::spawn(cmd, &logs.join(format!("test-rbac-speaker-{cfg}.log")));
    let procs = [&controller, &speaker];

    // A Service of the test's class, with its one endpoint on NODE.
    let r = svc_ns.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations: {{ferrolb.io/address-pool: rbac}}\nspec:\n  \
         type: LoadBalancer\n  loadBalancerClass: {class}\n  allocateLoadBalancerNodePorts: false\n  ports: [{{port: 80}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  \
         labels: {{kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints:\n  - addresses: [198.18.0.11]\n    \
         nodeName: {NODE}\n    conditions: {{ready: true}}\nports: [{{port: 80, protocol: TCP}}]\n"
    ));
    assert!(r.ok, "{}", r.stderr);
    let svc = ["svc", "-n", &svc_ns.name, "web"];

    // Controller: services list/watch + services/status patch.
    let ip = wait_value("the Service's address", &procs, || {
        Some(jsonpath(&svc, "{.status.loadBalancer.ingress[0].ip}")).filter(|s| !s.is_empty())
    });
    assert_eq!(ip, VIP);
    // services patch (annotation), events create.
    wait_value("the pool annotation", &procs, || {
        Some(jsonpath(
            &svc,
            "{.metadata.annotations.ferrolb\\.io/ip-allocated-from-pool}",
        ))
        .filter(|s| s == "rbac")
    });
    let events = |reason: &str| {
        let out = lab().kubectl(&[
            "get",
            "events",
            "-n",
            &svc_ns.name,
            "--field-selector",
            &format!("reason={reason}"),
            "-o",
            "name",
        ]);
        (!out.stdout.trim().is_empty()).then_some(out.stdout)
    };
    wait_value("an IPAllocated event", &procs, || events("IPAllocated"));
    // ipaddresspools/status and l2advertisements/status patch.
    let pool = ["ipaddresspool", "-n", cfg, "rbac"];
    wait_value("the pool's status", &procs, || {
        Some(jsonpath(
            &pool,
            "{.status.conditions[?(@.type==\"Valid\")].status}/{.status.assignedIPv4}",
        ))
        .filter(|s| s == "True/1")
    });
    wait_value("the L2Advertisement's Valid condition", &procs, || {
        Some(jsonpath(
            &["l2advertisement", "-n", cfg, "rbac"],
            "{.status.conditions[?(@.type==\"Valid\")].status}",
        ))
        .filter(|s| s == "True")
    });
    // leases create/get/patch: the controller leads, under its pod name.
    assert_eq!(
        jsonpath(
            &["lease", "-n", cfg, "ferrolb-controller"],
            "{.spec.holderIdentity}"
        ),
        "rbac-test-controller"
    );

    // Speaker: services/status patch (the L2 condition), events create, and it really answers ARP.
    wait_value("the L2Announced condition", &procs, || {
        Some(jsonpath(
            &svc,
            "{.status.conditions[?(@.type==\"ferrolb.io/L2Announced\")].message}",
        ))
        .filter(|m| m.contains(&format!("from node {NODE}")))
    });
    wait_value("a NodeAssigned event", &procs, || events("NodeAssigned"));
    let mac = wait_value("an ARP answer", &procs, || neighbour_mac(VIP, "eth0"));
    assert_eq!(mac, node_mac(NODE, 0));
    // secrets list/watch (the MD5 password is found) and bgppeers/status patch.
    wait_value("the speaker's BGP session status", &procs, || {
        Some(jsonpath(
            &["bgppeer", "-n", cfg, "nobody"],
            "{.status.sessions[*].node}",
        ))
        .filter(|n| n.contains(NODE))
    });
    assert!(
        !speaker.log().contains("passwordSecret md5 not found"),
        "{}",
        speaker.log()
    );
    let ready = lab().exec(
        NODE,
        &[
            "curl",
            "-sf",
            &format!("http://127.0.0.1:{speaker_metrics}/readyz"),
        ],
    );
    assert!(ready.ok, "speaker /readyz: {ready:?}");

    // Let the periodic work (pool status, events, session reports) run a little longer, then
    // check that nothing at all was refused.
    std::thread::sleep(Duration::from_secs(2));
    for p in procs {
        assert!(
            p.denials().is_empty(),
            "{} was refused:\n{}",
            p.log.display(),
            p.denials().join("\n")
        );
    }
}

/// What the rules do not allow: each component gets its own verbs on its own resources only.
#[test]
fn service_accounts_get_nothing_more() {
    let rbac = Rbac::install();
    let ns = rbac.ns.name.clone();
    let n = ns.as_str();
    // `cmd`: the `kubectl auth can-i` arguments, space-separated.
    let yes = |c: &str, cmd: &str| {
        let a: Vec<&str> = cmd.split_whitespace().collect();
        assert!(rbac.can(c, &a), "{c} should be allowed to {a:?}");
    };
    let no = |c: &str, cmd: &str| {
        let a: Vec<&str> = cmd.split_whitespace().collect();
        assert!(!rbac.can(c, &a), "{c} must not be allowed to {a:?}");
    };
    // The controller: Services and their status, its config and its Lease; no Secrets, no Nodes,
    // no Service spec changes other than patch, no config writes.
    yes(
        "controller",
        "patch services --subresource status -n default",
    );
    yes(
        "controller",
        &format!("patch ipaddresspools.ferrolb.io --subresource status -n {n}"),
    );
    yes(
        "controller",
        &format!("patch leases.coordination.k8s.io/ferrolb-controller -n {n}"),
    );
    no(
        "controller",
        &format!("patch leases.coordination.k8s.io/someone-else -n {n}"),
    );
    no(
        "controller",
        &format!("delete leases.coordination.k8s.io/ferrolb-controller -n {n}"),
    );
    // Secrets: list/watch in its namespace (BGPPeer passwordSecrets, to explain unusable ones),
    // nowhere else.
    yes("controller", &format!("list secrets -n {n}"));
    no("controller", "list secrets -n default");
    no("controller", &format!("patch secrets -n {n}"));
    // The membership key Secret: read by name, created if missing; nothing else.
    yes(
        "controller",
        &format!("get secrets/ferrolb-memberlist -n {n}"),
    );
    yes("controller", &format!("create secrets -n {n}"));
    no("controller", &format!("get secrets/someone-else -n {n}"));
    no(
        "controller",
        &format!("patch secrets/ferrolb-memberlist -n {n}"),
    );
    no(
        "controller",
        &format!("delete secrets/ferrolb-memberlist -n {n}"),
    );
    no("controller", "create secrets -n default");
    no("controller", "patch events.events.k8s.io -n default");
    no("controller", "list nodes");
    no("controller", "update services -n default");
    no("controller", "delete services -n default");
    no(
        "controller",
        &format!("create ipaddresspools.ferrolb.io -n {n}"),
    );
    no(
        "controller",
        &format!("patch ipaddresspools.ferrolb.io -n {n}"),
    );
    no("controller", "list ipaddresspools.ferrolb.io -n default");
    // The speaker: reads, plus the L2 condition and its BGP session entries.
    yes("speaker", "patch services --subresource status -n default");
    yes(
        "speaker",
        &format!("patch bgppeers.ferrolb.io --subresource status -n {n}"),
    );
    yes("speaker", &format!("list secrets -n {n}"));
    no("speaker", "get secrets -n default");
    no("speaker", "list secrets -n kube-system");
    no("speaker", "patch services -n default");
    no(
        "speaker",
        &format!("patch ipaddresspools.ferrolb.io --subresource status -n {n}"),
    );
    no("speaker", &format!("patch bgppeers.ferrolb.io -n {n}"));
    // Events are created afresh, never patched (controller/src/events.rs): create only.
    yes("speaker", "create events.events.k8s.io -n default");
    no("speaker", "patch events.events.k8s.io -n default");
    no(
        "speaker",
        &format!("create leases.coordination.k8s.io -n {n}"),
    );
    no("speaker", "patch nodes");
    for c in ["controller", "speaker"] {
        no(c, &format!("create pods -n {n}"));
        no(c, &format!("list configmaps -n {n}"));
        no(c, "* *");
    }
}

/// Every complete YAML example in the docs (and the README's quick start) is accepted by the API
/// server, schema and CEL rules included.
#[test]
fn doc_examples_pass_server_side_dry_run() {
    let mut files = vec![repo().join("README.md")];
    for dir in ["docs", "docs/crds"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut block: Option<Vec<String>> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            match &mut block {
                None if trimmed == "```yaml" => block = Some(Vec::new()),
                Some(lines) if trimmed == "```" => {
                    // Indentation of the fence (examples inside list items are indented).
                    let indent = line.len() - trimmed.len();
                    let yaml: String = lines
                        .iter()
                        .map(|l| format!("{}\n", l.get(indent..).unwrap_or(l.trim())))
                        .collect();
                    if yaml.contains("apiVersion:") && yaml.contains("\nkind:")
                        || yaml.starts_with("apiVersion:")
                    {
                        let r = lab().kubectl_in(&["apply", "--dry-run=server", "-f", "-"], &yaml);
                        assert!(
                            r.ok,
                            "{}: example rejected:\n{yaml}\n{}",
                            f.display(),
                            r.stderr
                        );
                        checked += 1;
                    }
                    block = None;
                }
                Some(lines) => lines.push(line.to_string()),
                None => {}
            }
        }
    }
    assert!(checked >= 12, "only {checked} examples found");
}
