//! The monitoring bundle (deploy/monitoring): the alert rules pass `promtool check rules` and their
//! unit tests (`promtool test rules`), the Grafana dashboard has the structure Grafana needs and
//! every query parses, the dashboard passes Grafana's dashboard schema (hack/dashboard-check: the
//! Grafana Foundation SDK's strict decoding), both only use metrics the programs register, and the
//! Helm chart ships the same files. Needs hack/promtool (unpacks Debian's prometheus package), Go
//! for hack/dashboard-check and, for the chart, hack/helm; no lab.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `promtool ARGS` (hack/promtool: Debian's, unpacked into the cache) in deploy/monitoring;
/// panics with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new(repo().join("hack/promtool"))
        .args(args)
        .current_dir(repo().join("deploy/monitoring"))
        .output()
        .unwrap_or_else(|e| panic!("hack/promtool runs ({e})"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

#[test]
fn alert_rules_pass_promtool_check() {
    let out = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    promtool(&["test", "rules", "alerts_test.yaml"]);
    // Every alert is tested, firing and quiet (the test file holds one case of each).
    let rules = read("deploy/monitoring/alerts.yaml");
    let tests = read("deploy/monitoring/alerts_test.yaml");
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let cases = tests.matches(&format!("alertname: {alert}\n")).count();
        let quiet = tests
            .matches(&format!("alertname: {alert}\n    exp_alerts: []\n"))
            .count();
        assert!(
            quiet >= 1 && cases > quiet,
            "{alert}: needs a case where it fires and one where it does not ({cases} cases, {quiet} quiet)"
        );
    }
}

fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/monitoring/dashboard.json")).expect("dashboard.json is JSON")
}

/// Every query of the dashboard: (panel id, refId, expr).
fn queries(d: &Value) -> Vec<(u64, String, String)> {
    let mut all = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            all.push((
                p["id"].as_u64().unwrap(),
                t["refId"].as_str().unwrap_or_default().to_string(),
                t["expr"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    all
}

#[test]
fn dashboard_has_the_structure_grafana_needs() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    for key in ["title", "uid"] {
        assert!(d[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    // The data source is chosen on import / by the sidecar's Grafana, not baked in.
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a datasource variable of type prometheus"
    );
    let panels = d["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut ids = BTreeSet::new();
    for p in panels {
        let id = p["id"].as_u64().expect("panel id");
        let title = p["title"].as_str().unwrap_or_default();
        assert!(ids.insert(id), "panel id {id} used twice");
        assert!(!title.is_empty(), "panel {id} has no title");
        let g = &p["gridPos"];
        let [h, w, x, _y] = ["h", "w", "x", "y"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("panel {id} ({title}): gridPos.{k}"))
        });
        assert!(
            h > 0 && w > 0 && x + w <= 24,
            "panel {id} ({title}): gridPos {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(p["type"].as_str().is_some(), "panel {id}: type");
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {id} ({title})"
        );
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("panel {id} ({title}) has no targets"));
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "panel {id}: expr"
            );
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "panel {id}: refId twice"
            );
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "panel {id} ({title})"
            );
        }
    }
}

/// Runs hack/dashboard-check on a dashboard file: (passed, what it printed).
fn dashboard_check(file: &Path) -> (bool, String) {
    let out = Command::new(repo().join("hack/dashboard-check"))
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("hack/dashboard-check runs ({e})"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn dashboard_passes_grafanas_schema() {
    let (ok, out) = dashboard_check(&repo().join("deploy/monitoring/dashboard.json"));
    assert!(ok, "deploy/monitoring/dashboard.json:\n{out}");
}

#[test]
fn dashboard_schema_check_refuses_broken_dashboards() {
    // Each case breaks one thing of the shipped dashboard; the checker must name it.
    type Break = fn(&mut Value);
    let cases: [(&str, Break, &str); 5] = [
        (
            "misspelt gridPos field",
            |d| d["panels"][1]["gridPos"]["hieght"] = 4.into(),
            "unexpected field 'hieght'",
        ),
        (
            "gridPos width as a string",
            |d| d["panels"][2]["gridPos"]["w"] = "4".into(),
            "panels[2].gridPos.w",
        ),
        (
            "misspelt stat option",
            |d| d["panels"][1]["options"]["colorMod"] = "value".into(),
            "unexpected field 'colorMod'",
        ),
        (
            "query without expr",
            |d| {
                let t = &mut d["panels"][9]["targets"][0];
                t["exp"] = t["expr"].take();
                t.as_object_mut().unwrap().remove("expr");
            },
            "panels[9].targets[0].expr: required field is missing",
        ),
        (
            "unknown panel type",
            |d| d["panels"][9]["type"] = "timeseriez".into(),
            "type \"timeseriez\" is not a panel type the SDK knows",
        ),
    ];
    for (i, (what, break_it, expected)) in cases.into_iter().enumerate() {
        let mut d = dashboard();
        break_it(&mut d);
        let file =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("broken-dashboard-{i}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(&d).unwrap()).unwrap();
        let (ok, out) = dashboard_check(&file);
        assert!(!ok, "{what}: the check passed");
        assert!(
            out.contains(expected),
            "{what}: expected {expected:?} in:\n{out}"
        );
    }
}

#[test]
fn dashboard_queries_parse() {
    // promtool parses PromQL in rule files: every query becomes a recording rule. Grafana's
    // interval variables are replaced by durations first.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (id, ref_id, expr) in queries(&dashboard()) {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$__range", "1h");
        rules += &format!(
            "      - record: dashboard:panel{id}:{ref_id}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        );
    }
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-queries.yaml");
    std::fs::write(&file, rules).unwrap();
    promtool(&["check", "rules", &file.to_string_lossy()]);
}

/// Metric names the programs register (prometheus-client adds the `ferrolb_` prefix here).
fn registered() -> BTreeSet<String> {
    fn walk(dir: &Path, names: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for call in text.split(".register(").skip(1) {
                    let call = call.trim_start();
                    if let Some(rest) = call.strip_prefix('"') {
                        names.insert(format!("ferrolb_{}", &rest[..rest.find('"').unwrap()]));
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    walk(&repo().join("controller/src"), &mut names);
    walk(&repo().join("speaker/src"), &mut names);
    names
}

/// `ferrolb_*` names in a text, without the suffixes Prometheus exposes counters (`_total`) and
/// histograms under.
fn used(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("ferrolb_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        names.insert(base.to_string());
    }
    names
}

#[test]
fn alerts_and_dashboard_use_only_exported_metrics() {
    let known = registered();
    assert!(known.len() >= 20, "registrations found: {known:?}");
    let rules: String = read("deploy/monitoring/alerts.yaml")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let queries: String = queries(&dashboard())
        .into_iter()
        .map(|q| q.2 + "\n")
        .collect();
    for (file, text) in [("alerts.yaml", rules), ("dashboard.json", queries)] {
        let used = used(&text);
        assert!(used.len() >= 10, "{file}: {used:?}");
        let unknown: Vec<&String> = used.iter().filter(|n| !known.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics nobody exports: {unknown:?}"
        );
    }
}

#[test]
fn helm_chart_ships_the_same_monitoring_files() {
    // Helm reads only files inside the chart: hack/sync-deploy keeps these copies.
    for f in ["alerts.yaml", "dashboard.json"] {
        assert!(
            read(&format!("deploy/monitoring/{f}"))
                == read(&format!("charts/ferrolb/monitoring/{f}")),
            "charts/ferrolb/monitoring/{f} differs from deploy/monitoring/{f}: run hack/sync-deploy"
        );
    }
    let out = Command::new(repo().join("hack/helm"))
        .args(["template", "ferrolb"])
        .arg(repo().join("charts/ferrolb"))
        .args([
            "--namespace",
            "ferrolb-system",
            "--set",
            "monitoring.prometheusRule.enabled=true",
            "--set",
            "monitoring.dashboard.enabled=true",
            "--show-only",
            "templates/monitoring.yaml",
        ])
        .output()
        .expect("hack/helm runs");
    let rendered = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{rendered}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let indent = |text: &str, n: usize| -> String {
        text.lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("{}{l}\n", " ".repeat(n))
                }
            })
            .collect()
    };
    assert!(rendered.contains("kind: PrometheusRule"), "{rendered}");
    assert!(
        rendered.contains(&indent(&read("deploy/monitoring/alerts.yaml"), 2)),
        "the PrometheusRule's spec is not alerts.yaml verbatim:\n{rendered}"
    );
    assert!(rendered.contains("grafana_dashboard: \"1\""), "{rendered}");
    assert!(
        rendered.contains(&indent(&read("deploy/monitoring/dashboard.json"), 4)),
        "the ConfigMap does not hold dashboard.json verbatim:\n{rendered}"
    );
}
