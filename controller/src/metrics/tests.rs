use prometheus_client::encoding::text::encode;

use super::*;

fn exported(registry: &Registry) -> String {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    text
}

#[test]
fn a_replica_that_loses_the_lead_exports_no_pool_series() {
    let mut registry = Registry::default();
    let m = Metrics::new(&mut registry);
    let labels = PoolLabels {
        pool: "default".into(),
        family: "IPv4".into(),
    };
    m.leader.set(1);
    m.services.set(3);
    m.services_pending.set(1);
    m.addresses_total.get_or_create(&labels).set(10);
    m.addresses_in_use.get_or_create(&labels).set(3);
    m.addresses_in_conflict.get_or_create(&labels).set(1);
    let leading = exported(&registry);
    assert!(
        leading.contains("ferrolb_allocator_addresses_in_use{pool=\"default\",family=\"IPv4\"} 3"),
        "{leading}"
    );

    m.standby();
    let standby = exported(&registry);
    for gone in [
        "ferrolb_allocator_addresses{",
        "ferrolb_allocator_addresses_in_use{",
        "ferrolb_allocator_addresses_in_conflict{",
    ] {
        assert!(!standby.contains(gone), "{gone} still exported:\n{standby}");
    }
    for zero in [
        "ferrolb_controller_leader 0",
        "ferrolb_controller_services 0",
        "ferrolb_controller_services_pending 0",
    ] {
        assert!(
            standby.contains(&format!("{zero}\n")),
            "no {zero}:\n{standby}"
        );
    }
}
