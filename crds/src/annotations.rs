//! Annotations on Services. FerroLB's own spelling wins; MetalLB's two spellings are honoured so
//! migrated Services need no edits.

use std::collections::BTreeMap;

/// Pin a Service to a pool by name.
pub const ADDRESS_POOL: &str = "ferrolb.io/address-pool";
/// Request specific addresses: comma-separated, at most one per family.
pub const LOAD_BALANCER_IPS: &str = "ferrolb.io/loadBalancerIPs";
/// Services with the same key may share an address.
pub const ALLOW_SHARED_IP: &str = "ferrolb.io/allow-shared-ip";
/// Written by the controller: the pool the addresses came from.
pub const IP_ALLOCATED_FROM_POOL: &str = "ferrolb.io/ip-allocated-from-pool";

const LEGACY_PREFIXES: [&str; 2] = ["metallb.io/", "metallb.universe.tf/"];

/// Reads annotation `key` (a `ferrolb.io/…` name), falling back to MetalLB's spellings.
/// Returns the value and the spelling it was found under.
pub fn get<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> Option<(&'a str, String)> {
    if let Some(v) = annotations.get(key) {
        return Some((v.as_str(), key.to_string()));
    }
    let suffix = key.strip_prefix("ferrolb.io/")?;
    LEGACY_PREFIXES.iter().find_map(|p| {
        let k = format!("{p}{suffix}");
        annotations.get(&k).map(|v| (v.as_str(), k))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_spelling_wins_then_metallb() {
        let mut a = BTreeMap::new();
        a.insert(
            "metallb.universe.tf/address-pool".to_string(),
            "old".to_string(),
        );
        assert_eq!(get(&a, ADDRESS_POOL).unwrap().0, "old");
        a.insert("metallb.io/address-pool".to_string(), "mid".to_string());
        assert_eq!(get(&a, ADDRESS_POOL).unwrap().0, "mid");
        a.insert(ADDRESS_POOL.to_string(), "new".to_string());
        assert_eq!(
            get(&a, ADDRESS_POOL).unwrap(),
            ("new", ADDRESS_POOL.to_string())
        );
        assert!(get(&a, ALLOW_SHARED_IP).is_none());
    }
}
