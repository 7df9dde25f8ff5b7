//! Routes we originate and their packing into UPDATE messages.
//!
//! Pure data: no I/O. The FSM decides *when* to send; this module decides *how* routes are
//! grouped so that routes with identical attributes share one UPDATE and no UPDATE exceeds
//! the 4096-byte BGP message limit.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::codec::{
    AS_TRANS, AsPathSegment, HEADER_LEN, MAX_MESSAGE_LEN, Origin, PathAttribute, Update,
};
use super::prefix::{Family, NextHop, Prefix};

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

    /// The prefix family matches the next-hop family: encodable on any session.
    pub fn is_consistent(&self) -> bool {
        matches!(
            (self.prefix.addr(), self.next_hop),
            (IpAddr::V4(_), NextHop::V4(_)) | (IpAddr::V6(_), NextHop::V6 { .. })
        )
    }

    /// An IPv4 prefix with an IPv6 next hop: only for peers that announced the extended next
    /// hop capability for IPv4 unicast (RFC 8950).
    pub fn needs_extended_next_hop(&self) -> bool {
        matches!(
            (self.prefix.addr(), self.next_hop),
            (IpAddr::V4(_), NextHop::V6 { .. })
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
/// IPv4 routes with an IPv6 next hop go in MP_REACH_NLRI (RFC 8950 §4): the caller sends them
/// only to peers that accept them. IPv6 routes with an IPv4 next hop cannot be encoded and are
/// skipped.
pub fn announce_updates<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    ctx: &UpdateContext,
) -> Vec<Update> {
    let mut groups: BTreeMap<AttrKey, Vec<Prefix>> = BTreeMap::new();
    for r in routes
        .into_iter()
        .filter(|r| r.is_consistent() || r.needs_extended_next_hop())
    {
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
        match key.next_hop {
            NextHop::V4(_) => {
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
            NextHop::V6 { global, link_local } => {
                let mut next_hop = vec![IpAddr::V6(global)];
                next_hop.extend(link_local.map(IpAddr::V6));
                let empty = PathAttribute::MpReach {
                    family: key.family,
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
                        family: key.family,
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
mod tests;
