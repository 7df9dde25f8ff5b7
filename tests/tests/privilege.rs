//! Least privilege of the speaker, against the lab's real API server: with the speaker's
//! ServiceAccount token, a Service's `status.loadBalancer.ingress` (or any other status field,
//! or its metadata) cannot be changed: the ValidatingAdmissionPolicy of
//! deploy/rbac/speaker-policy.yaml refuses it. The speaker's own condition stays writable.
//!
//! The test installs deploy/rbac as the lab does with LAB_RBAC=1 (server-side apply, so it is a
//! no-op when the lab already has it) and takes a fresh token of `ferrolb-speaker`.

use std::time::Duration;

use ferrolb_tests::{TestNamespace, lab, repo};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

const NS: &str = ferrolb_crds::DEFAULT_NAMESPACE;
const SPEAKER: &str = "ferrolb-speaker";

/// A client authenticated as the speaker's ServiceAccount.
async fn speaker_client() -> Client {
    let yaml = lab().kubectl(&["kustomize", &repo().join("deploy/rbac").to_string_lossy()]);
    assert!(yaml.ok, "{}", yaml.stderr);
    let r = lab().kubectl_in(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &yaml.stdout,
    );
    assert!(r.ok, "deploy/rbac: {}", r.stderr);
    let token = lab().kubectl(&["create", "token", SPEAKER, "-n", NS, "--duration", "1h"]);
    assert!(token.ok, "{}", token.stderr);
    let mut kc = kube::config::Kubeconfig::read_from(&lab().kubeconfig).unwrap();
    for u in &mut kc.auth_infos {
        if let Some(auth) = u.auth_info.as_mut() {
            *auth = kube::config::AuthInfo {
                token: Some(token.stdout.trim().to_string().into()),
                ..Default::default()
            };
        }
    }
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn refused(r: Result<Service, kube::Error>, what: &str) -> String {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {
            assert!(
                s.message.contains("ferrolb-speaker-service-status"),
                "{what}: refused, but not by the policy: {}",
                s.message
            );
            s.message
        }
        other => panic!("{what} was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn speaker_cannot_change_service_addresses_only_its_condition() {
    let speaker = speaker_client().await;
    let ns = TestNamespace::new("priv");
    // A class no controller handles: the addresses are the test's own.
    let r = ns.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: LoadBalancer\n  \
         loadBalancerClass: test.ferrolb.io/none\n  allocateLoadBalancerNodePorts: false\n  ports: [{port: 80}]\n",
    );
    assert!(r.ok, "{}", r.stderr);
    let admin: Api<Service> = Api::namespaced(lab().client().await.unwrap(), &ns.name);
    admin
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "loadBalancer": {"ingress": [{"ip": "198.18.0.250"}]},
                "conditions": [{"type": "ferrolb.io/IPAllocated", "status": "True", "reason": "Test",
                                "message": "by the test", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            }})),
        )
        .await
        .expect("admin sets the status");
    let api: Api<Service> = Api::namespaced(speaker.clone(), &ns.name);

    // The speaker's own condition, written as report.rs writes it (server-side apply, the shared
    // manager, no force). The policy takes a moment to become active after it is created.
    let own = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": ns.name},
        "status": {"conditions": [{"type": "ferrolb.io/L2Announced", "status": "True",
            "reason": "Announced", "message": "layer2: 198.18.0.250 from node flb-node1 on eth0",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    api.patch_status(
        "web",
        &PatchParams::apply("ferrolb-speaker"),
        &Patch::Apply(&own),
    )
    .await
    .expect("the speaker writes its own condition");

    // Rewriting the addresses: by merge patch, by server-side apply (forced), and by a JSON
    // patch, each refused by the policy. Wait for the policy to be in force first (new policies
    // reach the API server's admission within a second or so).
    let steal =
        Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.66"}]}}}));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let msg = loop {
        match api
            .patch_status("web", &PatchParams::default(), &steal)
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 403 => break s.message,
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the speaker changed status.loadBalancer.ingress: {other:?}"
                );
                // Put the address back for the next attempt.
                let _ = admin
                    .patch_status(
                        "web",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.250"}]}}})),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(msg.contains("ferrolb-speaker-service-status"), "{msg}");
    println!("merge patch refused: {msg}");
    let forced = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": ns.name},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.18.0.67"}]}}
    });
    refused(
        api.patch_status(
            "web",
            &PatchParams::apply("ferrolb-speaker").force(),
            &Patch::Apply(&forced),
        )
        .await,
        "a forced apply of the ingress",
    );
    refused(
        api.patch_status(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([
                    {"op": "remove", "path": "/status/loadBalancer/ingress"}
                ]))
                .unwrap(),
            ),
        )
        .await,
        "removing the ingress",
    );
    // Another condition (the controller's), and the Service's labels through the status.
    let other = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": ns.name},
        "status": {"conditions": [{"type": "ferrolb.io/IPAllocated", "status": "False",
            "reason": "Evil", "message": "x", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    refused(
        api.patch_status(
            "web",
            &PatchParams::apply("evil").force(),
            &Patch::Apply(&other),
        )
        .await,
        "changing another condition",
    );
    refused(
        api.patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"evil": "yes"}}})),
        )
        .await,
        "labelling the Service through its status",
    );

    // Nothing changed; the own condition is still writable.
    let svc = admin.get_status("web").await.unwrap();
    let st = svc.status.unwrap();
    let ips: Vec<String> = st
        .load_balancer
        .and_then(|l| l.ingress)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect();
    assert_eq!(ips, ["198.18.0.250"]);
    let conds = st.conditions.unwrap_or_default();
    let allocated = conds
        .iter()
        .find(|c| c.type_ == "ferrolb.io/IPAllocated")
        .unwrap();
    assert_eq!(allocated.reason, "Test");
    let mut own2 = own.clone();
    own2["status"]["conditions"][0]["message"] =
        json!("layer2: 198.18.0.250 from node flb-node2 on eth0");
    api.patch_status(
        "web",
        &PatchParams::apply("ferrolb-speaker"),
        &Patch::Apply(&own2),
    )
    .await
    .expect("the speaker still writes its own condition");
    let svc = admin.get_status("web").await.unwrap();
    let l2 = svc
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "ferrolb.io/L2Announced")
        .unwrap();
    assert!(l2.message.contains("flb-node2"), "{l2:?}");
}
