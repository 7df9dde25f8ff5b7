//! The committed CRD YAML must be exactly what the types generate.

#[test]
fn committed_crds_match_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(ferrolb_crds::manifest::CRDS_YAML_PATH);
    let committed = std::fs::read_to_string(&path).expect("crds/ferrolb-crds.yaml exists");
    let generated = ferrolb_crds::manifest::yaml().expect("CRDs serialise");
    assert!(
        committed == generated,
        "{} is stale: run `cargo run -p ferrolb-crds --bin crdgen -- --write` and commit it",
        path.display()
    );
}

#[test]
fn six_kinds_in_one_group_with_structural_schemas() {
    let crds = ferrolb_crds::manifest::all();
    let kinds: Vec<_> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "IPAddressPool",
            "L2Advertisement",
            "BGPAdvertisement",
            "BGPPeer",
            "BFDProfile",
            "Community"
        ]
    );
    for crd in &crds {
        assert_eq!(crd.spec.group, "ferrolb.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        // Structural schemas: every node declares a type (ipnet-style untyped items are rejected).
        let schema = serde_json::to_value(v.schema.as_ref().unwrap()).unwrap();
        assert_typed(&schema["openAPIV3Schema"], &crd.spec.names.kind);
    }
}

fn assert_typed(s: &serde_json::Value, at: &str) {
    let Some(obj) = s.as_object() else { return };
    let int_or_string = obj.get("x-kubernetes-int-or-string").is_some();
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields").is_some();
    assert!(
        obj.contains_key("type") || int_or_string || preserve,
        "{at}: node without type: {s}"
    );
    if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
        for (k, v) in props {
            assert_typed(v, &format!("{at}.{k}"));
        }
    }
    if let Some(items) = obj.get("items") {
        assert_typed(items, &format!("{at}[]"));
    }
    if let Some(ap) = obj.get("additionalProperties") {
        assert_typed(ap, &format!("{at}{{}}"));
    }
}
