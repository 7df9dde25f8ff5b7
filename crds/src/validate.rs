//! Cross-object validation: the rules the API server cannot check on one object (overlapping
//! pools, references to objects that do not exist, conflicting advertisements). Controller and
//! speaker both run it on the same snapshot, so they agree on what is in use; the controller
//! writes the verdicts to each object's `Valid` condition.
//!
//! Where two objects conflict, the older one (creation time, then name) keeps working and the
//! newer one is refused, so adding a bad object never takes a working one down.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::address::{AddressRange, Family, parse_blocks};
use crate::bgp_peer::{PASSWORD_SECRET_TYPE, secret_password};
use crate::l2::interface_name_problem;
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
    /// Secrets in FerroLB's namespace that may be a BGPPeer's `passwordSecret` (those of type
    /// `kubernetes.io/basic-auth` suffice; they may be redacted with
    /// [`crate::bgp_peer::redact_secret`]).
    pub secrets: Vec<Secret>,
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
            let unusable: Vec<String> = pool
                .spec
                .addresses
                .iter()
                .zip(&ranges)
                .filter_map(|(text, range)| {
                    range
                        .unusable()
                        .map(|(block, what)| format!("'{text}' overlaps {block} ({what})"))
                })
                .collect();
            if !unusable.is_empty() {
                return Err(Verdict::invalid(
                    "UnusableAddresses",
                    format!(
                        "{}: such addresses cannot be announced or reached; list only unicast addresses outside these blocks",
                        unusable.join("; ")
                    ),
                ));
            }
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
        // The CRD refuses these; objects stored before it did are refused here.
        let bad_names: Vec<String> = spec
            .interfaces
            .iter()
            .filter_map(|i| interface_name_problem(i).map(|why| format!("'{i}' {why}")))
            .collect();
        let v = if let Some(p) =
            selectors_problem("ipAddressPoolSelectors", &spec.ip_address_pool_selectors)
                .or_else(|| selectors_problem("nodeSelectors", &spec.node_selectors))
        {
            Verdict::invalid("InvalidSelector", p)
        } else if !bad_names.is_empty() {
            Verdict::invalid(
                "InvalidInterface",
                format!(
                    "interfaces must be Linux interface names (eth0): {}",
                    bad_names.join("; ")
                ),
            )
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
            if let Some(v) = aggregation_problem(spec, &selected) {
                return v;
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

/// Whether an advertisement's aggregate could cover addresses outside a pool it selects: ranges
/// are split into CIDRs (as MetalLB does), and the aggregation length must be no shorter than
/// any of them.
fn aggregation_problem(spec: &BGPAdvertisementSpec, selected: &[&ValidPool]) -> Option<Verdict> {
    // The longest CIDR prefix per family, and where it comes from.
    let mut need: BTreeMap<Family, (u8, String, String, ipnet::IpNet)> = BTreeMap::new();
    for pool in selected {
        for (range, text) in pool.ranges.iter().zip(&pool.spec.addresses) {
            for net in range.cidrs() {
                let e = need
                    .entry(range.family())
                    .or_insert_with(|| (0, pool.name.clone(), text.to_string(), net));
                if net.prefix_len() > e.0 {
                    *e = (net.prefix_len(), pool.name.clone(), text.to_string(), net);
                }
            }
        }
    }
    need.into_iter().find_map(|(family, (len, pool, block, net))| {
        let (agg, field) = match family {
            Family::V4 => (spec.aggregation_v4(), "aggregationLength"),
            Family::V6 => (spec.aggregation_v6(), "aggregationLengthV6"),
        };
        (agg < len).then(|| {
            let aggregate = ipnet::IpNet::new(net.network(), agg)
                .map(|n| n.trunc().to_string())
                .unwrap_or_default();
            Verdict::invalid(
                "AggregationTooShort",
                format!(
                    "{field} {agg} would advertise {aggregate}, which covers addresses outside pool {pool}: its block '{block}' splits into CIDRs as long as {net}; set {field} to {len} or more"
                ),
            )
        })
    })
}

/// Why a BGPPeer's `passwordSecret` cannot be used, if it cannot.
fn password_secret_problem(peer: &BGPPeer, secrets: &[Secret]) -> Option<Verdict> {
    let r = peer.spec.password_secret.as_ref()?;
    let own = peer.namespace().unwrap_or_default();
    if let Some(ns) = r
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty() && *ns != own)
    {
        return Some(Verdict::invalid(
            "PasswordSecretNamespace",
            format!(
                "passwordSecret.namespace is {ns}, but FerroLB reads Secrets only from its own namespace {own}; remove passwordSecret.namespace or set it to {own}"
            ),
        ));
    }
    let Some(secret) = secrets.iter().find(|s| s.name_any() == r.name) else {
        return Some(Verdict::invalid(
            "PasswordSecretNotFound",
            format!(
                "passwordSecret {} not found: create a Secret of type {PASSWORD_SECRET_TYPE} named {} in namespace {own} with the TCP MD5 password under key 'password' (a Secret of another type is not read)",
                r.name, r.name
            ),
        ));
    };
    secret_password(secret).err().map(|e| {
        Verdict::invalid(
            "PasswordSecretInvalid",
            format!("passwordSecret {} {e}", r.name),
        )
    })
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
                && o.spec.interface == spec.interface
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
                    spec.address_label(),
                    spec.peer_port
                ),
            )
        } else {
            // Holds its address from here on, even while its Secret is unusable: fixing the
            // Secret must not turn a newer duplicate invalid.
            accepted.push(peer);
            if let Some(v) = password_secret_problem(peer, &s.secrets) {
                v
            } else {
                match &spec.bfd_profile {
                    Some(p) if !bfd.contains(p) => Verdict::valid(format!(
                        "in use without BFD: BFDProfile {p} not found; create it or fix bfdProfile"
                    )),
                    _ => Verdict::valid("in use"),
                }
            }
        };
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
                    avoid_conflicting_ips: false,
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

    #[test]
    fn pools_with_unusable_addresses_say_which_and_what_to_do() {
        let s = Snapshot {
            pools: vec![
                pool("lo", &["198.18.3.0/24", "127.0.0.0/8"], 1),
                pool("everything", &["0.0.0.0/0"], 2),
                pool("mcast", &["239.1.1.1-239.1.1.9"], 3),
                pool("bcast", &["255.255.255.255/32"], 4),
                pool("span", &["126.255.255.250-128.0.0.5"], 5),
                pool("v6", &["fe80::/64", "ff02::1/128", "::1/128", "::/128"], 6),
                pool("mapped", &["::ffff:198.18.0.0/120"], 7),
                pool("apipa", &["169.254.10.0/24"], 8),
                pool("fine", &["198.18.4.0/24", "fd00:18:4::/120"], 9),
            ],
            ..Default::default()
        };
        let r = validate(&s);
        let msg = |n: &str| {
            let v = &r.pools[n];
            assert!(!v.ok, "{n} accepted");
            assert_eq!(v.reason, "UnusableAddresses", "{n}: {}", v.message);
            v.message.clone()
        };
        let lo = msg("lo");
        assert!(
            lo.contains("'127.0.0.0/8' overlaps 127.0.0.0/8 (loopback)"),
            "{lo}"
        );
        assert!(
            !lo.contains("198.18.3.0"),
            "only the bad block is named: {lo}"
        );
        assert!(lo.contains("list only unicast addresses"), "{lo}");
        assert!(msg("everything").contains("0.0.0.0/8"));
        assert!(msg("mcast").contains("multicast"));
        assert!(msg("bcast").contains("broadcast"));
        assert!(msg("span").contains("'126.255.255.250-128.0.0.5' overlaps 127.0.0.0/8"));
        let v6 = msg("v6");
        for what in [
            "fe80::/10 (link-local)",
            "ff00::/8 (multicast)",
            "::1/128 (loopback)",
            "::/128 (the unspecified",
        ] {
            assert!(v6.contains(what), "{what}: {v6}");
        }
        assert!(msg("mapped").contains("IPv4-mapped"));
        assert!(msg("apipa").contains("link-local"));
        assert!(r.pools["fine"].ok);
        let names: Vec<_> = r.valid_pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["fine"],
            "no address of a refused pool is handed out"
        );
    }

    #[test]
    fn aggregation_is_checked_per_cidr_of_a_range() {
        let mut s = Snapshot {
            pools: vec![
                pool("range", &["198.18.10.5-198.18.10.9"], 1),
                pool(
                    "aligned",
                    &["198.18.12.0-198.18.12.255", "fd00:18:12::/120"],
                    2,
                ),
            ],
            bgp_advertisements: vec![
                adv("range-28", &["range"], None, Some(28), 1),
                adv("range-31", &["range"], None, Some(31), 2),
                adv("range-32", &["range"], None, Some(32), 3),
                adv("aligned-24", &["aligned"], None, Some(24), 4),
            ],
            ..Default::default()
        };
        let mut v6 = adv("aligned-v6", &["aligned"], None, Some(24), 5);
        v6.spec.aggregation_length_v6 = Some(112);
        s.bgp_advertisements.push(v6);
        let r = validate(&s);
        let v = &r.bgp_advertisements;
        // The covering prefix of .5-.9 is a /28, but the /28 also covers .0-.4 and .10-.15.
        assert_eq!(v["range-28"].reason, "AggregationTooShort");
        let m = &v["range-28"].message;
        for part in [
            "aggregationLength 28",
            "198.18.10.0/28",
            "pool range",
            "198.18.10.5/32",
            "to 32 or more",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        assert_eq!(v["range-31"].reason, "AggregationTooShort");
        assert!(v["range-32"].ok);
        assert!(
            v["aligned-24"].ok,
            "a range that is one CIDR aggregates as that CIDR"
        );
        assert_eq!(v["aligned-v6"].reason, "AggregationTooShort");
        assert!(v["aligned-v6"].message.contains("aggregationLengthV6 112"));
    }

    fn peer_with_secret(name: &str, secret_ns: Option<&str>, t: i64) -> BGPPeer {
        let mut p = BGPPeer::new(
            name,
            BGPPeerSpec {
                password_secret: Some(crate::bgp_peer::SecretRef {
                    name: "md5".into(),
                    namespace: secret_ns.map(String::from),
                }),
                ..BGPPeerSpec::new(64600, 64512, "198.18.0.2")
            },
        );
        p.metadata.namespace = Some("ferrolb-system".into());
        at(p, t)
    }

    fn secret(ty: &str, password: Option<&[u8]>) -> Secret {
        let mut s = Secret {
            type_: Some(ty.into()),
            data: password
                .map(|p| [("password".to_string(), k8s_openapi::ByteString(p.to_vec()))].into()),
            ..Default::default()
        };
        s.metadata.name = Some("md5".into());
        s.metadata.namespace = Some("ferrolb-system".into());
        s
    }

    #[test]
    fn password_secret_must_be_in_our_namespace_exist_and_hold_a_password() {
        let verdict = |peer: BGPPeer, secrets: Vec<Secret>| {
            let s = Snapshot {
                bgp_peers: vec![peer],
                secrets,
                ..Default::default()
            };
            validate(&s).bgp_peers["p"].clone()
        };
        let good = || vec![secret("kubernetes.io/basic-auth", Some(b"s3cret"))];
        assert!(verdict(peer_with_secret("p", None, 1), good()).ok);
        assert!(verdict(peer_with_secret("p", Some("ferrolb-system"), 1), good()).ok);
        assert!(verdict(peer_with_secret("p", Some(""), 1), good()).ok);

        let v = verdict(peer_with_secret("p", Some("metallb-system"), 1), good());
        assert_eq!(v.reason, "PasswordSecretNamespace");
        assert_eq!(
            v.message,
            "passwordSecret.namespace is metallb-system, but FerroLB reads Secrets only from its own namespace ferrolb-system; remove passwordSecret.namespace or set it to ferrolb-system"
        );

        let v = verdict(peer_with_secret("p", None, 1), vec![]);
        assert_eq!(v.reason, "PasswordSecretNotFound");
        assert!(
            v.message.contains("md5 not found") && v.message.contains("kubernetes.io/basic-auth"),
            "{}",
            v.message
        );

        for (s, want) in [
            (secret("Opaque", Some(b"s3cret")), "is of type Opaque"),
            (
                secret("kubernetes.io/basic-auth", None),
                "has no 'password' key",
            ),
            (secret("kubernetes.io/basic-auth", Some(b"")), "empty"),
            (
                secret("kubernetes.io/basic-auth", Some(&[0xff, 0xfe])),
                "not UTF-8",
            ),
        ] {
            let v = verdict(peer_with_secret("p", None, 1), vec![s]);
            assert_eq!(v.reason, "PasswordSecretInvalid");
            assert!(
                v.message.starts_with("passwordSecret md5 ") && v.message.contains(want),
                "{want}: {}",
                v.message
            );
        }
        // The controller's redacted copy gives the same verdicts.
        let mut s = secret("kubernetes.io/basic-auth", Some(&[0xff]));
        crate::bgp_peer::redact_secret(&mut s);
        assert!(
            verdict(peer_with_secret("p", None, 1), vec![s])
                .message
                .contains("not UTF-8")
        );
    }

    #[test]
    fn an_unusable_secret_does_not_hand_the_address_to_a_newer_duplicate() {
        let s = Snapshot {
            bgp_peers: vec![
                peer_with_secret("old", None, 1),
                peer_with_secret("new", None, 2),
            ],
            ..Default::default()
        };
        let r = validate(&s);
        assert_eq!(r.bgp_peers["old"].reason, "PasswordSecretNotFound");
        assert_eq!(r.bgp_peers["new"].reason, "DuplicatePeer");
    }

    #[test]
    fn l2_interfaces_must_be_interface_names() {
        let l2 = |name: &str, ifaces: &[&str]| {
            L2Advertisement::new(
                name,
                crate::L2AdvertisementSpec {
                    interfaces: ifaces.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
            )
        };
        let s = Snapshot {
            l2_advertisements: vec![
                l2("ok", &["eth0", "bond0.100"]),
                l2(
                    "bad",
                    &["eth0", "../../etc", "eth0:1", "averyveryverylongname"],
                ),
            ],
            ..Default::default()
        };
        let r = validate(&s);
        assert!(r.l2_advertisements["ok"].ok);
        let v = &r.l2_advertisements["bad"];
        assert_eq!(v.reason, "InvalidInterface");
        for part in [
            "'../../etc' contains '/'",
            "'eth0:1' contains ':'",
            "'averyveryverylongname' is longer than 15 bytes",
        ] {
            assert!(v.message.contains(part), "{part}: {}", v.message);
        }
        assert!(!v.message.contains("'eth0'"), "{}", v.message);
    }
}
