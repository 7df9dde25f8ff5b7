//! Cross-object validation: the rules the API server cannot check on one object (overlapping
//! pools, references to objects that do not exist, conflicting advertisements). Controller and
//! speaker both run it on the same snapshot, so they agree on what is in use; the controller
//! writes the verdicts to each object's `Valid` condition.
//!
//! Where two objects conflict, the older one (creation time, then name) keeps working and the
//! newer one is refused, so adding a bad object never takes a working one down.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::address::{AddressRange, Family, parse_blocks};
use crate::schema::Community as CommunityValue;
use crate::{
    BFDProfile, BGPAdvertisement, BGPAdvertisementSpec, BGPPeer, Community, IPAddressPool,
    L2Advertisement, selector,
};

/// Everything validation looks at: FerroLB's objects in its namespace.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub pools: Vec<IPAddressPool>,
    pub l2_advertisements: Vec<L2Advertisement>,
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    pub bgp_peers: Vec<BGPPeer>,
    pub bfd_profiles: Vec<BFDProfile>,
    pub communities: Vec<Community>,
}

/// The verdict on one object: `ok` (in use) or not, with a reason and a message saying what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    fn valid(message: impl Into<String>) -> Verdict {
        Verdict {
            ok: true,
            reason: "Valid",
            message: message.into(),
        }
    }
    fn invalid(reason: &'static str, message: impl Into<String>) -> Verdict {
        Verdict {
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// A pool that passed validation, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidPool {
    pub name: String,
    pub ranges: Vec<AddressRange>,
    pub labels: BTreeMap<String, String>,
    pub spec: crate::IPAddressPoolSpec,
}

/// Verdicts per kind, keyed by object name, plus the parsed valid pools and community aliases.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub pools: BTreeMap<String, Verdict>,
    pub l2_advertisements: BTreeMap<String, Verdict>,
    pub bgp_advertisements: BTreeMap<String, Verdict>,
    pub bgp_peers: BTreeMap<String, Verdict>,
    pub bfd_profiles: BTreeMap<String, Verdict>,
    pub communities: BTreeMap<String, Verdict>,
    /// Valid pools in name order.
    pub valid_pools: Vec<ValidPool>,
    /// Community alias → value, from valid Community objects.
    pub community_aliases: BTreeMap<String, CommunityValue>,
}

impl Report {
    pub fn pool_ok(&self, name: &str) -> bool {
        self.pools.get(name).is_some_and(|v| v.ok)
    }
}

/// Objects sorted oldest first (creation time, then name): the order in which conflicts are won.
fn by_age<K: kube::Resource>(objs: &[K]) -> Vec<&K> {
    let mut v: Vec<&K> = objs.iter().collect();
    v.sort_by(|a, b| {
        let ta = a.meta().creation_timestamp.as_ref().map(|t| t.0);
        let tb = b.meta().creation_timestamp.as_ref().map(|t| t.0);
        // Objects without a timestamp (not yet stored) count as newest.
        (ta.is_none(), ta, a.name_any()).cmp(&(tb.is_none(), tb, b.name_any()))
    });
    v
}

fn selectors_problem(what: &str, sels: &[LabelSelector]) -> Option<String> {
    sels.iter()
        .find_map(|s| selector::check(s).err())
        .map(|e| format!("{what}: {e}"))
}

/// Runs every cross-object rule.
pub fn validate(s: &Snapshot) -> Report {
    let mut r = Report::default();
    validate_pools(s, &mut r);
    validate_communities(s, &mut r);
    validate_l2(s, &mut r);
    validate_bgp_advertisements(s, &mut r);
    validate_peers(s, &mut r);
    for p in &s.bfd_profiles {
        let msg = if p.spec.echo_mode {
            "in use; echoMode is accepted but FerroLB runs BFD in asynchronous mode only"
        } else {
            "in use"
        };
        r.bfd_profiles.insert(p.name_any(), Verdict::valid(msg));
    }
    r
}

fn validate_pools(s: &Snapshot, r: &mut Report) {
    // Ranges of pools accepted so far, oldest first, for the cross-pool overlap rule.
    let mut taken: Vec<(String, AddressRange)> = Vec::new();
    for pool in by_age(&s.pools) {
        let name = pool.name_any();
        let verdict = (|| {
            let ranges = parse_blocks(&pool.spec.addresses).map_err(|errs| {
                let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
                Verdict::invalid("InvalidAddresses", text.join("; "))
            })?;
            for (i, a) in ranges.iter().enumerate() {
                if let Some(b) = ranges[i + 1..].iter().find(|b| a.overlaps(b)) {
                    return Err(Verdict::invalid(
                        "OverlappingAddresses",
                        format!("blocks {a} and {b} overlap: list each address once"),
                    ));
                }
            }
            for a in &ranges {
                if let Some((other, b)) = taken.iter().find(|(_, b)| a.overlaps(b)) {
                    return Err(Verdict::invalid(
                        "OverlapsPool",
                        format!(
                            "addresses {a} overlap pool {other} ({b}), which is older; remove the overlap from one of them"
                        ),
                    ));
                }
            }
            if let Some(sa) = &pool.spec.service_allocation {
                let p = selectors_problem(
                    "serviceAllocation.namespaceSelectors",
                    &sa.namespace_selectors,
                )
                .or_else(|| {
                    selectors_problem("serviceAllocation.serviceSelectors", &sa.service_selectors)
                });
                if let Some(p) = p {
                    return Err(Verdict::invalid("InvalidSelector", p));
                }
            }
            Ok(ranges)
        })();
        match verdict {
            Ok(ranges) => {
                taken.extend(ranges.iter().map(|rg| (name.clone(), *rg)));
                let v4: u128 = ranges
                    .iter()
                    .filter(|x| x.family() == Family::V4)
                    .map(|x| x.size())
                    .sum();
                let v6 = ranges
                    .iter()
                    .filter(|x| x.family() == Family::V6)
                    .fold(0u128, |acc, x| acc.saturating_add(x.size()));
                r.pools.insert(
                    name.clone(),
                    Verdict::valid(format!("in use: {v4} IPv4 and {v6} IPv6 addresses")),
                );
                r.valid_pools.push(ValidPool {
                    name,
                    ranges,
                    labels: pool.labels().clone(),
                    spec: pool.spec.clone(),
                });
            }
            Err(v) => {
                r.pools.insert(name, v);
            }
        }
    }
    r.valid_pools.sort_by(|a, b| a.name.cmp(&b.name));
}

fn validate_communities(s: &Snapshot, r: &mut Report) {
    for c in by_age(&s.communities) {
        let mut clash = None;
        let mut parsed = Vec::new();
        for alias in &c.spec.communities {
            match CommunityValue::parse(alias.value.as_str()) {
                Some(v) => match r.community_aliases.get(&alias.name) {
                    Some(old) if *old != v => {
                        clash = Some(format!(
                            "alias {} is already defined as {old} by an older Community object; rename it",
                            alias.name
                        ))
                    }
                    _ => parsed.push((alias.name.clone(), v)),
                },
                None => {
                    clash = Some(format!(
                        "alias {} has an invalid value {}",
                        alias.name, alias.value
                    ))
                }
            }
        }
        match clash {
            Some(msg) => {
                r.communities
                    .insert(c.name_any(), Verdict::invalid("AliasConflict", msg));
            }
            None => {
                r.community_aliases.extend(parsed);
                r.communities.insert(c.name_any(), Verdict::valid("in use"));
            }
        }
    }
}

/// Names in `wanted` that are not among `known`.
fn missing<'a>(wanted: &'a [String], known: &BTreeSet<String>) -> Vec<&'a str> {
    wanted
        .iter()
        .filter(|w| !known.contains(*w))
        .map(String::as_str)
        .collect()
}

fn all_pool_names(s: &Snapshot) -> BTreeSet<String> {
    s.pools.iter().map(|p| p.name_any()).collect()
}

fn validate_l2(s: &Snapshot, r: &mut Report) {
    let pools = all_pool_names(s);
    for adv in &s.l2_advertisements {
        let spec = &adv.spec;
        let v = if let Some(p) =
            selectors_problem("ipAddressPoolSelectors", &spec.ip_address_pool_selectors)
                .or_else(|| selectors_problem("nodeSelectors", &spec.node_selectors))
        {
            Verdict::invalid("InvalidSelector", p)
        } else {
            let gone = missing(&spec.ip_address_pools, &pools);
            if gone.is_empty() {
                Verdict::valid("in use")
            } else {
                Verdict::valid(format!(
                    "in use; pools not found (nothing is announced for them until they exist): {}",
                    gone.join(", ")
                ))
            }
        };
        r.l2_advertisements.insert(adv.name_any(), v);
    }
}

/// Pools an advertisement selects, by name, among the valid ones.
pub fn selected_pools<'a>(
    names: &[String],
    selectors: &[LabelSelector],
    valid: &'a [ValidPool],
) -> Vec<&'a ValidPool> {
    valid
        .iter()
        .filter(|p| {
            (names.is_empty() && selectors.is_empty())
                || names.contains(&p.name)
                || selectors.iter().any(|s| selector::matches(s, &p.labels))
        })
        .collect()
}

/// The valid pools a BGPAdvertisement announces (none by default when it announces Service
/// ranges instead).
pub fn bgp_selected_pools<'a>(
    spec: &BGPAdvertisementSpec,
    valid: &'a [ValidPool],
) -> Vec<&'a ValidPool> {
    if spec.ip_address_pools.is_empty()
        && spec.ip_address_pool_selectors.is_empty()
        && !spec.all_pools_by_default()
    {
        return Vec::new();
    }
    selected_pools(
        &spec.ip_address_pools,
        &spec.ip_address_pool_selectors,
        valid,
    )
}

fn validate_bgp_advertisements(s: &Snapshot, r: &mut Report) {
    let pools = all_pool_names(s);
    let peers: BTreeSet<String> = s.bgp_peers.iter().map(|p| p.name_any()).collect();
    // Accepted advertisements so far, for the conflict rule (oldest wins).
    let mut accepted: Vec<&BGPAdvertisement> = Vec::new();
    for adv in by_age(&s.bgp_advertisements) {
        let spec = &adv.spec;
        let v = (|| {
            if let Some(p) =
                selectors_problem("ipAddressPoolSelectors", &spec.ip_address_pool_selectors)
                    .or_else(|| selectors_problem("nodeSelectors", &spec.node_selectors))
            {
                return Verdict::invalid("InvalidSelector", p);
            }
            for c in &spec.communities {
                if CommunityValue::parse(c.as_str()).is_none()
                    && !r.community_aliases.contains_key(c.as_str())
                {
                    return Verdict::invalid(
                        "UnknownCommunity",
                        format!(
                            "community {c} is neither a value nor an alias defined in a Community object"
                        ),
                    );
                }
            }
            let selected = bgp_selected_pools(spec, &r.valid_pools);
            for pool in &selected {
                for range in &pool.ranges {
                    let agg = match range.family() {
                        Family::V4 => spec.aggregation_v4(),
                        Family::V6 => spec.aggregation_v6(),
                    };
                    if agg < range.covering_prefix_len() {
                        return Verdict::invalid(
                            "AggregationTooShort",
                            format!(
                                "aggregation length /{agg} is shorter than pool {}'s block {range} (/{}): the route would cover addresses outside the pool",
                                pool.name,
                                range.covering_prefix_len()
                            ),
                        );
                    }
                }
            }
            for old in &accepted {
                let shared_pool = selected.iter().any(|p| {
                    bgp_selected_pools(&old.spec, &r.valid_pools)
                        .iter()
                        .any(|q| q.name == p.name)
                });
                let peers_meet = spec.peers.is_empty()
                    || old.spec.peers.is_empty()
                    || spec.peers.iter().any(|p| old.spec.peers.contains(p));
                let nodes_meet = spec.node_selectors.is_empty()
                    || old.spec.node_selectors.is_empty()
                    || spec.node_selectors == old.spec.node_selectors;
                let differ =
                    matches!((spec.local_pref, old.spec.local_pref), (Some(a), Some(b)) if a != b);
                if shared_pool && peers_meet && nodes_meet && differ {
                    return Verdict::invalid(
                        "Conflict",
                        format!(
                            "localPref {} conflicts with older BGPAdvertisement {} (localPref {}) for the same pool, peers and nodes",
                            spec.local_pref.unwrap_or_default(),
                            old.name_any(),
                            old.spec.local_pref.unwrap_or_default()
                        ),
                    );
                }
            }
            let mut notes = Vec::new();
            let gone = missing(&spec.ip_address_pools, &pools);
            if !gone.is_empty() {
                notes.push(format!("pools not found: {}", gone.join(", ")));
            }
            let gone = missing(&spec.peers, &peers);
            if !gone.is_empty() {
                notes.push(format!("peers not found: {}", gone.join(", ")));
            }
            if notes.is_empty() {
                Verdict::valid("in use")
            } else {
                Verdict::valid(format!("in use; {}", notes.join("; ")))
            }
        })();
        if v.ok {
            accepted.push(adv);
        }
        r.bgp_advertisements.insert(adv.name_any(), v);
    }
}

fn validate_peers(s: &Snapshot, r: &mut Report) {
    let bfd: BTreeSet<String> = s.bfd_profiles.iter().map(|p| p.name_any()).collect();
    let mut accepted: Vec<&BGPPeer> = Vec::new();
    for peer in by_age(&s.bgp_peers) {
        let spec = &peer.spec;
        let v = if let Some(p) = selectors_problem("nodeSelectors", &spec.node_selectors) {
            Verdict::invalid("InvalidSelector", p)
        } else if let Some(old) = accepted.iter().find(|o| {
            o.spec.peer_address == spec.peer_address
                && o.spec.peer_port == spec.peer_port
                && (o.spec.node_selectors.is_empty()
                    || spec.node_selectors.is_empty()
                    || o.spec.node_selectors == spec.node_selectors)
        }) {
            Verdict::invalid(
                "DuplicatePeer",
                format!(
                    "older BGPPeer {} already peers with {} port {} from the same nodes; give them disjoint nodeSelectors",
                    old.name_any(),
                    spec.peer_address,
                    spec.peer_port
                ),
            )
        } else {
            match &spec.bfd_profile {
                Some(p) if !bfd.contains(p) => Verdict::valid(format!(
                    "in use without BFD: BFDProfile {p} not found; create it or fix bfdProfile"
                )),
                _ => Verdict::valid("in use"),
            }
        };
        if v.ok {
            accepted.push(peer);
        }
        r.bgp_peers.insert(peer.name_any(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AddressBlock, CommunityRef};
    use crate::{
        BGPAdvertisementSpec, BGPPeerSpec, CommunitySpec, IPAddressPoolSpec,
        community::CommunityAlias,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn at<K: kube::Resource>(mut k: K, secs: i64) -> K {
        k.meta_mut().creation_timestamp = Some(Time(Timestamp::from_second(secs).unwrap()));
        k
    }
    fn pool(name: &str, addrs: &[&str], t: i64) -> IPAddressPool {
        at(
            IPAddressPool::new(
                name,
                IPAddressPoolSpec {
                    addresses: addrs.iter().map(|a| AddressBlock::from(*a)).collect(),
                    auto_assign: true,
                    avoid_buggy_ips: false,
                    service_allocation: None,
                },
            ),
            t,
        )
    }

    #[test]
    fn newer_overlapping_pool_is_refused_older_keeps_working() {
        let s = Snapshot {
            pools: vec![
                pool("b-new", &["198.18.10.128/25"], 20),
                pool("a-old", &["198.18.10.0/24"], 10),
                pool("c", &["198.18.11.0/24", "fd00:18::/64"], 30),
            ],
            ..Default::default()
        };
        let r = validate(&s);
        assert!(r.pools["a-old"].ok);
        assert!(!r.pools["b-new"].ok);
        assert_eq!(r.pools["b-new"].reason, "OverlapsPool");
        assert!(
            r.pools["b-new"].message.contains("a-old"),
            "{}",
            r.pools["b-new"].message
        );
        assert!(r.pools["c"].ok);
        let names: Vec<_> = r.valid_pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a-old", "c"]);
    }

    #[test]
    fn bad_blocks_and_inner_overlap_are_explained() {
        let s = Snapshot {
            pools: vec![
                pool("rev", &["198.18.0.9-198.18.0.1"], 1),
                pool("inner", &["198.18.1.0/24", "198.18.1.5-198.18.1.7"], 2),
                pool("ok", &["198.18.2.0/24"], 3),
            ],
            ..Default::default()
        };
        let r = validate(&s);
        assert_eq!(r.pools["rev"].reason, "InvalidAddresses");
        assert!(r.pools["rev"].message.contains("reversed"));
        assert_eq!(r.pools["inner"].reason, "OverlappingAddresses");
        assert!(
            r.pools["ok"].ok,
            "an invalid pool must not take valid ones down"
        );
    }

    fn adv(
        name: &str,
        pools: &[&str],
        local_pref: Option<u32>,
        agg: Option<i32>,
        t: i64,
    ) -> BGPAdvertisement {
        at(
            BGPAdvertisement::new(
                name,
                BGPAdvertisementSpec {
                    ip_address_pools: pools.iter().map(|s| s.to_string()).collect(),
                    local_pref,
                    aggregation_length: agg,
                    ..Default::default()
                },
            ),
            t,
        )
    }

    #[test]
    fn bgp_advertisement_rules() {
        let mut s = Snapshot {
            pools: vec![pool("p", &["198.18.10.0/24"], 1)],
            bgp_advertisements: vec![
                adv("old", &["p"], Some(100), None, 1),
                adv("conflict", &["p"], Some(200), None, 2),
                adv("same-pref", &["p"], Some(100), None, 3),
                adv("agg", &["p"], None, Some(16), 4),
                adv("agg-ok", &["p"], None, Some(24), 5),
                adv("ghost", &["nope"], None, None, 6),
            ],
            ..Default::default()
        };
        let mut c = BGPAdvertisement::new("comm", BGPAdvertisementSpec::default());
        c.spec.communities = vec![
            CommunityRef::from("vpn-only"),
            CommunityRef::from("65000:1"),
        ];
        s.bgp_advertisements.push(at(c, 7));
        let r = validate(&s);
        let v = &r.bgp_advertisements;
        assert!(v["old"].ok);
        assert_eq!(v["conflict"].reason, "Conflict");
        assert!(v["same-pref"].ok);
        assert_eq!(v["agg"].reason, "AggregationTooShort");
        assert!(v["agg-ok"].ok);
        assert!(v["ghost"].ok && v["ghost"].message.contains("nope"));
        assert_eq!(v["comm"].reason, "UnknownCommunity");

        s.communities.push(Community::new(
            "c",
            CommunitySpec {
                communities: vec![CommunityAlias {
                    name: "vpn-only".into(),
                    value: "65000:100".into(),
                }],
            },
        ));
        let r = validate(&s);
        assert!(r.bgp_advertisements["comm"].ok);
        assert_eq!(
            r.community_aliases["vpn-only"],
            CommunityValue::Standard(65000 << 16 | 100)
        );
    }

    #[test]
    fn peers_duplicates_and_missing_bfd() {
        let spec = |addr: &str, bfd: Option<&str>| BGPPeerSpec {
            bfd_profile: bfd.map(String::from),
            ..BGPPeerSpec::new(64600, 64512, addr)
        };
        let s = Snapshot {
            bgp_peers: vec![
                at(BGPPeer::new("a", spec("198.18.0.2", Some("fast"))), 1),
                at(BGPPeer::new("b", spec("198.18.0.2", None)), 2),
                at(BGPPeer::new("c", spec("198.18.0.3", None)), 3),
            ],
            ..Default::default()
        };
        let r = validate(&s);
        assert!(r.bgp_peers["a"].ok && r.bgp_peers["a"].message.contains("without BFD"));
        assert_eq!(r.bgp_peers["b"].reason, "DuplicatePeer");
        assert!(r.bgp_peers["c"].ok);
    }
}
