//! Routes we originate and their packing into UPDATE messages.
//!
//! Pure data: no I/O. The FSM decides *when* to send; this module decides *how* routes are
//! grouped so that routes with identical attributes share one UPDATE and no UPDATE exceeds
//! the 4096-byte BGP message limit.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::codec::{
    AS_TRANS, AsPathSegment, Family, HEADER_LEN, MAX_MESSAGE_LEN, Origin, PathAttribute, Update,
};

/// An IP prefix (address + length) with host bits cleared.
///
/// Our own small type: `ipnet` is not a speaker dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Returned when a prefix length exceeds the address width.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid prefix: {0}")]
pub struct PrefixError(pub String);

impl Prefix {
    /// Builds a prefix, clearing host bits so that equal networks compare equal.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let max = max_len(&addr);
        if len > max {
            return Err(PrefixError(format!("{addr}/{len}: length exceeds {max}")));
        }
        Ok(Self {
            addr: mask(addr, len),
            len,
        })
    }

    /// A host route (/32 or /128), the usual LoadBalancer VIP announcement.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: max_len(&addr),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn family(&self) -> Family {
        match self.addr {
            IpAddr::V4(_) => Family::Ipv4Unicast,
            IpAddr::V6(_) => Family::Ipv6Unicast,
        }
    }

    /// Bytes used by this prefix in an NLRI field: length octet + significant octets.
    pub fn wire_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }
}

fn max_len(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((a, l)) => {
                let addr: IpAddr = a.parse().map_err(|_| PrefixError(s.to_string()))?;
                let len: u8 = l.parse().map_err(|_| PrefixError(s.to_string()))?;
                Prefix::new(addr, len)
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| PrefixError(s.to_string()))?;
                Ok(Prefix::host(addr))
            }
        }
    }
}

/// The next hop we advertise for a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop {
    V4(Ipv4Addr),
    /// IPv6 next hop; the link-local part is sent too when set (32-byte MP_REACH next hop).
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    pub fn v6(global: Ipv6Addr) -> Self {
        NextHop::V6 {
            global,
            link_local: None,
        }
    }
}

/// One route we originate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub prefix: Prefix,
    pub next_hop: NextHop,
    /// Sent on iBGP sessions only (default 100 there); ignored for eBGP.
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<(u32, u32, u32)>,
}

impl Route {
    /// A route with no optional attributes.
    pub fn new(prefix: Prefix, next_hop: NextHop) -> Self {
        Self {
            prefix,
            next_hop,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
        }
    }

    /// The prefix family must match the next-hop family (no RFC 8950 extended next hop).
    pub fn is_consistent(&self) -> bool {
        matches!(
            (self.prefix.addr, self.next_hop),
            (IpAddr::V4(_), NextHop::V4(_)) | (IpAddr::V6(_), NextHop::V6 { .. })
        )
    }
}

/// Per-session facts that shape the attributes of the UPDATEs we emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateContext {
    pub local_asn: u32,
    /// iBGP: empty AS_PATH and LOCAL_PREF; eBGP: AS_PATH = our AS, no LOCAL_PREF.
    pub ibgp: bool,
    /// Whether the peer negotiated 4-octet ASNs (RFC 6793). If not, AS_PATH carries AS_TRANS
    /// and AS4_PATH carries the real ASN.
    pub four_octet_as: bool,
}

/// Default LOCAL_PREF on iBGP when the route does not set one (RFC 4271 common practice).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Attributes that must be identical for routes to share one UPDATE.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AttrKey {
    family: Family,
    next_hop: NextHop,
    local_pref: Option<u32>,
    communities: Vec<u32>,
    large_communities: Vec<(u32, u32, u32)>,
}

/// Builds the UPDATE messages that announce `routes`, grouped by identical attributes.
///
/// Routes whose prefix and next-hop families differ are skipped (they cannot be encoded
/// without extended next hop); `Route::is_consistent` lets callers reject them earlier.
pub fn announce_updates<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    ctx: &UpdateContext,
) -> Vec<Update> {
    let mut groups: BTreeMap<AttrKey, Vec<Prefix>> = BTreeMap::new();
    for r in routes.into_iter().filter(|r| r.is_consistent()) {
        let key = AttrKey {
            family: r.prefix.family(),
            next_hop: r.next_hop,
            local_pref: if ctx.ibgp {
                Some(r.local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
            } else {
                None
            },
            communities: r.communities.clone(),
            large_communities: r.large_communities.clone(),
        };
        groups.entry(key).or_default().push(r.prefix);
    }

    let mut out = Vec::new();
    for (key, prefixes) in groups {
        let attrs = base_attributes(&key, ctx);
        match key.family {
            Family::Ipv4Unicast => {
                let fixed = update_fixed_len(&attrs);
                for chunk in chunk_prefixes(&prefixes, MAX_MESSAGE_LEN - fixed) {
                    out.push(Update {
                        withdrawn: Vec::new(),
                        attributes: attrs.clone(),
                        nlri: chunk,
                        errors: Vec::new(),
                    });
                }
            }
            Family::Ipv6Unicast => {
                let NextHop::V6 { global, link_local } = key.next_hop else {
                    continue;
                };
                let mut next_hop = vec![IpAddr::V6(global)];
                next_hop.extend(link_local.map(IpAddr::V6));
                let empty = PathAttribute::MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop: next_hop.clone(),
                    nlri: Vec::new(),
                };
                let mut with_mp = attrs.clone();
                with_mp.push(empty);
                // MP_REACH always uses the extended (2-byte) length so its size bound is fixed.
                let fixed = update_fixed_len(&with_mp) + 1;
                for chunk in chunk_prefixes(&prefixes, MAX_MESSAGE_LEN - fixed) {
                    let mut attributes = attrs.clone();
                    attributes.push(PathAttribute::MpReach {
                        family: Family::Ipv6Unicast,
                        next_hop: next_hop.clone(),
                        nlri: chunk,
                    });
                    out.push(Update {
                        withdrawn: Vec::new(),
                        attributes,
                        nlri: Vec::new(),
                        errors: Vec::new(),
                    });
                }
            }
        }
    }
    out
}

/// Builds the UPDATE messages that withdraw `prefixes`.
pub fn withdraw_updates<'a>(prefixes: impl IntoIterator<Item = &'a Prefix>) -> Vec<Update> {
    let (v4, v6): (Vec<Prefix>, Vec<Prefix>) = prefixes
        .into_iter()
        .partition(|p| p.family() == Family::Ipv4Unicast);
    let mut out = Vec::new();
    // Header + withdrawn length + attribute length.
    let fixed = HEADER_LEN + 4;
    for chunk in chunk_prefixes(&v4, MAX_MESSAGE_LEN - fixed) {
        out.push(Update {
            withdrawn: chunk,
            attributes: Vec::new(),
            nlri: Vec::new(),
            errors: Vec::new(),
        });
    }
    // MP_UNREACH: flags, type, 2-byte length, AFI, SAFI.
    let fixed_v6 = HEADER_LEN + 4 + 4 + 3;
    for chunk in chunk_prefixes(&v6, MAX_MESSAGE_LEN - fixed_v6) {
        out.push(Update {
            withdrawn: Vec::new(),
            attributes: vec![PathAttribute::MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: chunk,
            }],
            nlri: Vec::new(),
            errors: Vec::new(),
        });
    }
    out
}

/// The End-of-RIB marker for a family (RFC 4724 §2).
pub fn end_of_rib(family: Family) -> Update {
    match family {
        Family::Ipv4Unicast => Update::default(),
        Family::Ipv6Unicast => Update {
            attributes: vec![PathAttribute::MpUnreach {
                family,
                withdrawn: Vec::new(),
            }],
            ..Update::default()
        },
    }
}

fn base_attributes(key: &AttrKey, ctx: &UpdateContext) -> Vec<PathAttribute> {
    let mut attrs = vec![PathAttribute::Origin(Origin::Igp)];
    if ctx.ibgp {
        attrs.push(PathAttribute::AsPath(Vec::new()));
    } else if ctx.four_octet_as || ctx.local_asn <= u32::from(u16::MAX) {
        attrs.push(PathAttribute::AsPath(vec![AsPathSegment::Sequence(vec![
            ctx.local_asn,
        ])]));
    } else {
        // RFC 6793 §4.2.2: a NEW speaker talking to an OLD one substitutes AS_TRANS and
        // carries the real path in AS4_PATH.
        attrs.push(PathAttribute::AsPath(vec![AsPathSegment::Sequence(vec![
            AS_TRANS.into(),
        ])]));
        attrs.push(PathAttribute::As4Path(vec![AsPathSegment::Sequence(vec![
            ctx.local_asn,
        ])]));
    }
    if let NextHop::V4(nh) = key.next_hop {
        attrs.push(PathAttribute::NextHop(nh));
    }
    if let Some(lp) = key.local_pref {
        attrs.push(PathAttribute::LocalPref(lp));
    }
    if !key.communities.is_empty() {
        attrs.push(PathAttribute::Communities(key.communities.clone()));
    }
    if !key.large_communities.is_empty() {
        attrs.push(PathAttribute::LargeCommunities(
            key.large_communities.clone(),
        ));
    }
    attrs
}

/// Size of an UPDATE with these attributes and no NLRI.
fn update_fixed_len(attrs: &[PathAttribute]) -> usize {
    let u = Update {
        attributes: attrs.to_vec(),
        ..Update::default()
    };
    HEADER_LEN + u.body_len(true)
}

/// Splits prefixes into chunks whose NLRI encoding fits in `budget` bytes.
fn chunk_prefixes(prefixes: &[Prefix], budget: usize) -> Vec<Vec<Prefix>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut used = 0;
    for p in prefixes {
        if used + p.wire_len() > budget && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        used += p.wire_len();
        cur.push(*p);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::codec::{CodecOptions, Message};

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Route {
        Route::new(p(s), NextHop::V4("198.18.0.1".parse().unwrap()))
    }

    fn v6(s: &str) -> Route {
        Route::new(p(s), NextHop::v6("fd00::1".parse().unwrap()))
    }

    const EBGP: UpdateContext = UpdateContext {
        local_asn: 64512,
        ibgp: false,
        four_octet_as: true,
    };
    const IBGP: UpdateContext = UpdateContext {
        local_asn: 64512,
        ibgp: true,
        four_octet_as: true,
    };

    #[test]
    fn prefix_parsing_and_masking() {
        assert_eq!(p("198.18.1.7/24").to_string(), "198.18.1.0/24");
        assert_eq!(p("198.18.1.7").to_string(), "198.18.1.7/32");
        assert_eq!(p("fd00::1").to_string(), "fd00::1/128");
        assert_eq!(p("fd00::1:2/64").to_string(), "fd00::/64");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert!("198.18.0.0/33".parse::<Prefix>().is_err());
        assert!("fd00::/129".parse::<Prefix>().is_err());
        assert!("nope/1".parse::<Prefix>().is_err());
        assert!("198.18.0.0/x".parse::<Prefix>().is_err());
        assert_eq!(p("198.18.0.0/17").wire_len(), 4);
        assert_eq!(p("0.0.0.0/0").wire_len(), 1);
        assert_eq!(p("fd00::/128").wire_len(), 17);
    }

    #[test]
    fn consistency() {
        assert!(v4("198.18.0.1").is_consistent());
        assert!(v6("fd00::1").is_consistent());
        let bad = Route::new(p("fd00::1"), NextHop::V4("198.18.0.1".parse().unwrap()));
        assert!(!bad.is_consistent());
        assert!(announce_updates([&bad], &EBGP).is_empty());
    }

    #[test]
    fn groups_by_identical_attributes() {
        let mut a = v4("198.18.0.10");
        let b = v4("198.18.0.11");
        let mut c = v4("198.18.0.12");
        c.communities = vec![0xfde8_0001];
        a.large_communities = vec![];
        let d = v6("fd00::10");
        let e = v6("fd00::11");
        a.local_pref = None;
        let ups = announce_updates([&a, &b, &c, &d, &e], &EBGP);
        assert_eq!(ups.len(), 3);
        let v4_groups: Vec<_> = ups.iter().filter(|u| !u.nlri.is_empty()).collect();
        assert_eq!(v4_groups.len(), 2);
        assert!(v4_groups.iter().any(|u| u.nlri.len() == 2));
        let v6u = ups.iter().find(|u| u.nlri.is_empty()).unwrap();
        match v6u.attributes.last().unwrap() {
            PathAttribute::MpReach { nlri, next_hop, .. } => {
                assert_eq!(nlri.len(), 2);
                assert_eq!(next_hop.len(), 1);
            }
            other => panic!("unexpected {other:?}"),
        }
        // eBGP: AS_PATH is our AS, no LOCAL_PREF.
        for u in &ups {
            assert!(
                u.attributes
                    .contains(&PathAttribute::AsPath(vec![AsPathSegment::Sequence(vec![
                        64512
                    ])]))
            );
            assert!(
                !u.attributes
                    .iter()
                    .any(|a| matches!(a, PathAttribute::LocalPref(_)))
            );
        }
    }

    #[test]
    fn ibgp_has_empty_as_path_and_local_pref() {
        let mut a = v4("198.18.0.10");
        let b = v4("198.18.0.11");
        a.local_pref = Some(200);
        let ups = announce_updates([&a, &b], &IBGP);
        assert_eq!(ups.len(), 2, "different local prefs split groups");
        for u in &ups {
            assert!(u.attributes.contains(&PathAttribute::AsPath(vec![])));
        }
        assert!(
            ups.iter()
                .any(|u| u.attributes.contains(&PathAttribute::LocalPref(200)))
        );
        assert!(ups.iter().any(|u| {
            u.attributes
                .contains(&PathAttribute::LocalPref(DEFAULT_LOCAL_PREF))
        }));
    }

    #[test]
    fn two_octet_peer_gets_as_trans_and_as4_path() {
        let ctx = UpdateContext {
            local_asn: 4_200_000_000,
            ibgp: false,
            four_octet_as: false,
        };
        let ups = announce_updates([&v4("198.18.0.1")], &ctx);
        let attrs = &ups[0].attributes;
        assert!(
            attrs.contains(&PathAttribute::AsPath(vec![AsPathSegment::Sequence(vec![
                23456
            ])]))
        );
        assert!(
            attrs.contains(&PathAttribute::As4Path(vec![AsPathSegment::Sequence(
                vec![4_200_000_000]
            )]))
        );
        let opts = CodecOptions {
            four_octet_as: false,
        };
        let bytes = Message::Update(ups[0].clone()).encode(&opts).unwrap();
        assert_eq!(
            Message::decode(&bytes, &opts).unwrap(),
            Message::Update(ups[0].clone())
        );
    }

    #[test]
    fn large_sets_respect_message_size() {
        let opts = CodecOptions::default();
        for ctx in [EBGP, IBGP] {
            let routes: Vec<Route> = (0..3000u32)
                .map(|i| {
                    let a = Ipv4Addr::from(0xc612_0000 + i);
                    let mut r =
                        Route::new(Prefix::host(a.into()), NextHop::V4(Ipv4Addr::LOCALHOST));
                    r.large_communities = vec![(1, 2, 3); 4];
                    r
                })
                .chain((0..3000u32).map(|i| {
                    let a = Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i));
                    Route::new(
                        Prefix::host(a.into()),
                        NextHop::V6 {
                            global: "fd00::1".parse().unwrap(),
                            link_local: Some("fe80::1".parse().unwrap()),
                        },
                    )
                }))
                .collect();
            let ups = announce_updates(&routes, &ctx);
            let mut seen = 0;
            for u in &ups {
                let bytes = Message::Update(u.clone()).encode(&opts).unwrap();
                assert!(bytes.len() <= MAX_MESSAGE_LEN);
                seen += u.nlri.len()
                    + u.attributes
                        .iter()
                        .map(|a| match a {
                            PathAttribute::MpReach { nlri, .. } => nlri.len(),
                            _ => 0,
                        })
                        .sum::<usize>();
            }
            assert_eq!(seen, 6000);
            // Packing is tight: few messages, each near the limit.
            assert!(ups.len() < 20, "{} updates", ups.len());

            let prefixes: Vec<Prefix> = routes.iter().map(|r| r.prefix).collect();
            let wd = withdraw_updates(&prefixes);
            let mut n = 0;
            for u in &wd {
                let bytes = Message::Update(u.clone()).encode(&opts).unwrap();
                assert!(bytes.len() <= MAX_MESSAGE_LEN);
                n += u.withdrawn.len()
                    + u.attributes
                        .iter()
                        .map(|a| match a {
                            PathAttribute::MpUnreach { withdrawn, .. } => withdrawn.len(),
                            _ => 0,
                        })
                        .sum::<usize>();
            }
            assert_eq!(n, 6000);
        }
    }

    #[test]
    fn end_of_rib_markers() {
        let opts = CodecOptions::default();
        let v4 = Message::Update(end_of_rib(Family::Ipv4Unicast))
            .encode(&opts)
            .unwrap();
        assert_eq!(v4.len(), 23);
        let v6 = Message::Update(end_of_rib(Family::Ipv6Unicast))
            .encode(&opts)
            .unwrap();
        // Header, two lengths, MP_UNREACH with AFI 2 / SAFI 1 and nothing else.
        assert_eq!(&v6[19..], &[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
        for m in [&v4, &v6] {
            let Message::Update(u) = Message::decode(m, &opts).unwrap() else {
                panic!()
            };
            assert!(u.end_of_rib().is_some());
        }
    }
}
