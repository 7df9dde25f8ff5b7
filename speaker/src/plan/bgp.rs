//! BGP mode for pool addresses: this node advertises itself as a next hop of each address it may
//! serve, to the peers of each BGPAdvertisement covering the address's pool, aggregated as the
//! advertisement asks. No election: routers spread the traffic over the nodes (ECMP).

use std::net::IpAddr;

use ferrolb_crds::BGPAdvertisement;
use ferrolb_crds::address::{AddressRange, Family};
use ferrolb_crds::schema::Community;
use ferrolb_crds::selector;
use ferrolb_crds::validate::{ValidPool, bgp_selected_pools};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use super::{Inputs, Plan, World, valid};

/// A route this node advertises to one peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Advertisement {
    pub prefix: IpAddr,
    pub prefix_len: u8,
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<(u32, u32, u32)>,
}

/// Advertises this node for every address it may serve.
pub(super) fn plan(inputs: &Inputs<'_>, plan: &mut Plan) {
    let w = inputs.world;
    let Some(me_node) = inputs.me_usable() else {
        return;
    };
    let advertisements = valid(&w.config.bgp_advertisements, &w.report.bgp_advertisements);
    for address in inputs.addresses.iter().filter(|a| a.may_serve(inputs.me)) {
        for adv in &advertisements {
            let sel = bgp_selected_pools(&adv.spec, &w.report.valid_pools);
            if !sel.iter().any(|p| p.name == address.pool.name)
                || !selector::any_matches(&adv.spec.node_selectors, me_node.labels())
            {
                continue;
            }
            let len = aggregate_len(&address.ip, &adv.spec, address.pool);
            let route = advertisement(w, adv, mask(address.ip, len), len);
            to_peers(plan, w, adv, me_node, &route);
        }
    }
}

/// Prefix length to advertise `ip` of `pool` with: the advertisement's aggregation length, or the
/// host route if that aggregate would cover an address outside the pool. Validation refuses such
/// advertisements (ranges are split into CIDRs); this makes sure a route never attracts traffic
/// for addresses FerroLB does not own even if an invalid one slipped through.
fn aggregate_len(ip: &IpAddr, spec: &ferrolb_crds::BGPAdvertisementSpec, pool: &ValidPool) -> u8 {
    let family = Family::of(ip);
    let len = match family {
        Family::V4 => spec.aggregation_v4(),
        Family::V6 => spec.aggregation_v6(),
    };
    let aggregate = AddressRange::of_prefix(*ip, len);
    if pool.ranges.iter().any(|r| r.covers(&aggregate)) {
        len
    } else {
        family.bits()
    }
}

/// The route for `prefix/len` with the advertisement's attributes.
pub(super) fn advertisement(
    w: &World<'_>,
    adv: &BGPAdvertisement,
    prefix: IpAddr,
    len: u8,
) -> Advertisement {
    let mut communities = Vec::new();
    let mut large = Vec::new();
    for c in &adv.spec.communities {
        let v = Community::parse(c.as_str())
            .or_else(|| w.report.community_aliases.get(c.as_str()).copied());
        match v {
            Some(Community::Standard(x)) => communities.push(x),
            Some(Community::Large(a, b, c)) => large.push((a, b, c)),
            None => {}
        }
    }
    communities.sort();
    communities.dedup();
    large.sort();
    large.dedup();
    Advertisement {
        prefix,
        prefix_len: len,
        local_pref: adv.spec.local_pref,
        communities,
        large_communities: large,
    }
}

/// Adds `route` for each valid peer the advertisement names (or every peer) that peers with
/// this node.
pub(super) fn to_peers(
    plan: &mut Plan,
    w: &World<'_>,
    adv: &BGPAdvertisement,
    me_node: &Node,
    route: &Advertisement,
) {
    for peer in &w.config.bgp_peers {
        let name = peer.name_any();
        let peer_ok = w.report.bgp_peers.get(&name).is_some_and(|v| v.ok);
        let wanted = adv.spec.peers.is_empty() || adv.spec.peers.contains(&name);
        if peer_ok && wanted && selector::any_matches(&peer.spec.node_selectors, me_node.labels()) {
            plan.bgp.entry(name).or_default().insert(route.clone());
        }
    }
}

/// `ip` with host bits beyond `len` cleared.
fn mask(ip: IpAddr, len: u8) -> IpAddr {
    AddressRange::of_prefix(ip, len).first()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::IpAddr;
    use std::sync::Arc;

    use ferrolb_crds::schema::AddressBlock;
    use ferrolb_crds::validate::{Report, Snapshot, validate};
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    use super::super::fixtures::{config, run, slice, svc, three};
    use super::super::{World, plan};
    use super::mask;

    #[test]
    fn no_aggregate_covers_addresses_outside_the_pool() {
        let mut cfg = config(None, true);
        cfg.pools[0].spec.addresses = vec![
            AddressBlock::from("198.18.10.5-198.18.10.9"),
            AddressBlock::from("198.18.11.0/24"),
        ];
        let svcs = [svc("a", &["198.18.10.6", "198.18.11.7"], false)];
        let eps = [slice("a", &["n1"])];
        let routes = |cfg: &Snapshot, report: &Report| -> BTreeSet<(String, u8)> {
            let live: BTreeSet<String> = ["n1".to_string()].into();
            let services: Vec<Arc<Service>> = svcs.iter().cloned().map(Arc::new).collect();
            let slices: Vec<Arc<EndpointSlice>> = eps.iter().cloned().map(Arc::new).collect();
            let nodes = three();
            let p = plan(
                &World {
                    services: &services,
                    slices: &slices,
                    nodes: &nodes,
                    config: cfg,
                    report,
                    live: &live,
                    lb_class: None,
                },
                "n1",
            );
            p.bgp
                .get("frr")
                .into_iter()
                .flatten()
                .map(|r| (r.prefix.to_string(), r.prefix_len))
                .collect()
        };
        // /28 over a range of five addresses: validation refuses it...
        cfg.bgp_advertisements[0].spec.aggregation_length = Some(28);
        let report = validate(&cfg);
        assert_eq!(
            report.bgp_advertisements["adv"].reason,
            "AggregationTooShort"
        );
        assert!(routes(&cfg, &report).is_empty());
        // ...and should a verdict say otherwise, the plan still never advertises 198.18.10.0/28,
        // while the /24 block aggregates as asked.
        let mut forced = report.clone();
        forced.bgp_advertisements.get_mut("adv").unwrap().ok = true;
        cfg.bgp_advertisements[0].spec.aggregation_length = Some(24);
        assert_eq!(
            routes(&cfg, &forced),
            [("198.18.10.6".into(), 32), ("198.18.11.0".into(), 24)].into()
        );
    }

    #[test]
    fn bgp_routes_carry_attributes_and_aggregate() {
        let cfg = config(None, true);
        let svcs = [svc("a", &["198.18.100.7"], false)];
        let p = run(&cfg, &svcs, &[slice("a", &["n1"])], &three(), &["n1"], "n2");
        let routes = &p.bgp["frr"];
        let r = routes.iter().next().unwrap();
        assert_eq!(
            (r.prefix, r.prefix_len),
            ("198.18.100.7".parse().unwrap(), 32)
        );
        assert_eq!(r.local_pref, Some(150));
        assert_eq!(r.communities, [65000 << 16 | 7]);
        assert_eq!(r.large_communities, [(1, 2, 3)]);
        assert_eq!(
            mask("198.18.100.7".parse().unwrap(), 24),
            "198.18.100.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            mask("fd00::7".parse().unwrap(), 0),
            "::".parse::<IpAddr>().unwrap()
        );
    }
}
