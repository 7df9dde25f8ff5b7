//! Address blocks as operators write them in `IPAddressPool.spec.addresses`: a CIDR
//! (`198.18.10.0/24`, `fd00:18:10::/120`) or an inclusive range (`198.18.10.5-198.18.10.9`).
//!
//! Addresses are handled as integers (`u128`, IPv4 mapped into the low 32 bits) so that a pool of
//! any size — an IPv6 /64 included — is a pair of numbers, never an enumeration.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The spelling Kubernetes uses in `spec.ipFamilies`.
    pub fn k8s_name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    pub fn from_k8s_name(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.k8s_name())
    }
}

/// An address as an integer of its family.
pub fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// The inverse of [`to_u128`]; `None` when `n` does not fit the family.
pub fn from_u128(family: Family, n: u128) -> Option<IpAddr> {
    match family {
        Family::V4 => u32::try_from(n).ok().map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        Family::V6 => Some(IpAddr::V6(Ipv6Addr::from(n))),
    }
}

/// Why an address block was refused. Messages say what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "'{0}' is neither a CIDR (198.18.10.0/24) nor a range (198.18.10.5-198.18.10.9) of one family"
    )]
    Syntax(String),
    #[error("'{block}' has host bits set: write the network address, {network}")]
    HostBits { block: String, network: String },
    #[error("range '{0}' mixes IPv4 and IPv6: both ends must be of one family")]
    MixedFamilies(String),
    #[error("range '{0}' is reversed: the first address must not be above the last")]
    Reversed(String),
}

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressRange {
    family: Family,
    first: u128,
    last: u128,
}

impl AddressRange {
    /// A range from two addresses; `None` if families differ or `first > last`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<AddressRange> {
        let family = Family::of(&first);
        if family != Family::of(&last) {
            return None;
        }
        let (a, b) = (to_u128(&first), to_u128(&last));
        (a <= b).then_some(AddressRange {
            family,
            first: a,
            last: b,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }
    pub fn first(&self) -> IpAddr {
        from_u128(self.family, self.first).expect("range bounds fit their family")
    }
    pub fn last(&self) -> IpAddr {
        from_u128(self.family, self.last).expect("range bounds fit their family")
    }
    /// First and last as integers.
    pub fn bounds(&self) -> (u128, u128) {
        (self.first, self.last)
    }

    /// Number of addresses, saturating at `u128::MAX` (only `::/0` saturates).
    pub fn size(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family && (self.first..=self.last).contains(&to_u128(ip))
    }

    pub fn overlaps(&self, other: &AddressRange) -> bool {
        self.family == other.family && self.first <= other.last && other.first <= self.last
    }

    /// Length of the shortest prefix that covers the whole range (which may also cover
    /// addresses outside it: see [`AddressRange::cidrs`] for aggregation checks).
    pub fn covering_prefix_len(&self) -> u8 {
        let bits = u32::from(self.family.bits());
        let differing = 128 - (self.first ^ self.last).leading_zeros();
        (bits - differing.min(bits)) as u8
    }

    /// The block `ip/len` (host bits of `ip` ignored).
    pub fn of_prefix(ip: IpAddr, len: u8) -> AddressRange {
        let family = Family::of(&ip);
        let host_bits = u32::from(family.bits() - len.min(family.bits()));
        let host_mask = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
        let first = to_u128(&ip) & !host_mask;
        AddressRange {
            family,
            first,
            last: first | host_mask,
        }
    }

    /// Whether every address of `other` is in this range.
    pub fn covers(&self, other: &AddressRange) -> bool {
        self.family == other.family && self.first <= other.first && other.last <= self.last
    }

    /// The range as the fewest CIDRs that make it up exactly, in address order (at most two per
    /// bit of the family): `198.18.10.5-198.18.10.9` is `.5/32`, `.6/31`, `.8/31`. MetalLB splits
    /// ranges the same way; an aggregate no shorter than each CIDR covers only pool addresses.
    pub fn cidrs(&self) -> Vec<ipnet::IpNet> {
        let bits = u32::from(self.family.bits());
        let mut out = Vec::new();
        let mut cur = self.first;
        loop {
            // The largest block starting at `cur` that is aligned and ends within the range.
            let align = cur.trailing_zeros().min(bits);
            let span = self.last - cur; // addresses after `cur`
            let fit = if span == u128::MAX {
                128
            } else {
                127 - (span + 1).leading_zeros()
            };
            let k = align.min(fit);
            let len = (bits - k) as u8;
            let net = from_u128(self.family, cur).expect("range bounds fit their family");
            out.push(ipnet::IpNet::new(net, len).expect("length within the family"));
            let size = 1u128.checked_shl(k).unwrap_or(0);
            match cur.checked_add(size) {
                Some(next) if size != 0 && next - 1 < self.last => cur = next,
                _ => break,
            }
        }
        out
    }

    /// The first block of [`UNUSABLE`] this range overlaps, with what it is.
    pub fn unusable(&self) -> Option<(&'static str, &'static str)> {
        UNUSABLE.iter().copied().find(|(block, _)| {
            block
                .parse::<AddressRange>()
                .is_ok_and(|b| b.overlaps(self))
        })
    }
}

/// Blocks a LoadBalancer address may never come from, with what they are: packets to them never
/// leave a host (loopback, unspecified, "this network"), are not routed (link-local, limited
/// broadcast) or are not unicast (multicast), so a Service given one is unreachable, and
/// announcing them (ARP, NDP, BGP) disturbs the segment. Pools overlapping them are refused (the
/// CRD's CEL rule for CIDRs and range ends; validation for everything).
pub const UNUSABLE: [(&str, &str); 10] = [
    (
        "0.0.0.0/8",
        "\"this network\", with the unspecified address 0.0.0.0",
    ),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "the limited broadcast address"),
    ("::/128", "the unspecified address"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first(), self.last())
    }
}

impl FromStr for AddressRange {
    type Err = AddressError;

    /// Parses a CIDR (host bits must be zero) or `a-b` range (spaces around `-` allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || AddressError::Syntax(s.to_string());
        let text = s.trim();
        if let Some((ip, len)) = text.split_once('/') {
            let ip: IpAddr = ip.trim().parse().map_err(|_| syntax())?;
            let len: u8 = len.trim().parse().map_err(|_| syntax())?;
            let family = Family::of(&ip);
            if len > family.bits() {
                return Err(syntax());
            }
            let host_bits = u32::from(family.bits() - len);
            let host_mask: u128 = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            let n = to_u128(&ip);
            let first = n & !host_mask;
            if n != first {
                let network = from_u128(family, first).ok_or_else(syntax)?;
                return Err(AddressError::HostBits {
                    block: s.to_string(),
                    network: format!("{network}/{len}"),
                });
            }
            return Ok(AddressRange {
                family,
                first,
                last: first | host_mask,
            });
        }
        let (a, b) = text.split_once('-').ok_or_else(syntax)?;
        let a: IpAddr = a.trim().parse().map_err(|_| syntax())?;
        let b: IpAddr = b.trim().parse().map_err(|_| syntax())?;
        if Family::of(&a) != Family::of(&b) {
            return Err(AddressError::MixedFamilies(s.to_string()));
        }
        AddressRange::new(a, b).ok_or_else(|| AddressError::Reversed(s.to_string()))
    }
}

/// Parses every block of a pool; returns all ranges, or every error (not just the first).
pub fn parse_blocks<S: AsRef<str>>(blocks: &[S]) -> Result<Vec<AddressRange>, Vec<AddressError>> {
    let mut ranges = Vec::with_capacity(blocks.len());
    let mut errors = Vec::new();
    for b in blocks {
        match b.as_ref().parse() {
            Ok(r) => ranges.push(r),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(ranges)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> AddressRange {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_and_range_forms() {
        let v4 = r("198.18.10.0/24");
        assert_eq!(v4.size(), 256);
        assert_eq!(v4.first().to_string(), "198.18.10.0");
        assert_eq!(v4.last().to_string(), "198.18.10.255");
        let v6 = r("fd00:18:10::/64");
        assert_eq!(v6.size(), 1u128 << 64);
        assert_eq!(v6.family(), Family::V6);
        let range = r(" 198.18.10.5 - 198.18.10.9 ");
        assert_eq!(range.size(), 5);
        assert_eq!(r("198.18.0.1/32").size(), 1);
        assert_eq!(r("::/0").size(), u128::MAX);
        assert_eq!(r("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = "198.18.10.5/24".parse::<AddressRange>().unwrap_err();
        assert!(e.to_string().contains("198.18.10.0/24"), "{e}");
        assert!(matches!(
            "198.18.0.9-198.18.0.1".parse::<AddressRange>(),
            Err(AddressError::Reversed(_))
        ));
        assert!(matches!(
            "198.18.0.1-fd00::1".parse::<AddressRange>(),
            Err(AddressError::MixedFamilies(_))
        ));
        for bad in [
            "",
            "nope",
            "198.18.0.0/33",
            "fd00::/129",
            "1.2.3.4",
            "a-b",
            "1.2.3.4/x",
        ] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
        let all = parse_blocks(&["198.18.0.0/24", "x", "y"]).unwrap_err();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn overlap_and_prefix() {
        assert!(r("198.18.0.0/24").overlaps(&r("198.18.0.255-198.18.1.3")));
        assert!(!r("198.18.0.0/24").overlaps(&r("198.18.1.0/24")));
        assert!(!r("0.0.0.0/0").overlaps(&r("::/0")));
        assert_eq!(r("198.18.0.0/24").covering_prefix_len(), 24);
        assert_eq!(r("198.18.0.1-198.18.0.2").covering_prefix_len(), 30);
        assert_eq!(r("fd00::/64").covering_prefix_len(), 64);
        assert_eq!(r("::/0").covering_prefix_len(), 0);
    }

    fn nets(s: &str) -> Vec<String> {
        r(s).cidrs().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ranges_split_into_cidrs() {
        assert_eq!(
            nets("198.18.10.5-198.18.10.9"),
            ["198.18.10.5/32", "198.18.10.6/31", "198.18.10.8/31"]
        );
        assert_eq!(nets("198.18.10.0/24"), ["198.18.10.0/24"]);
        assert_eq!(
            nets("198.18.10.0-198.18.11.0"),
            ["198.18.10.0/24", "198.18.11.0/32"]
        );
        assert_eq!(nets("0.0.0.0/0"), ["0.0.0.0/0"]);
        assert_eq!(nets("::/0"), ["::/0"]);
        assert_eq!(
            nets("255.255.255.254-255.255.255.255"),
            ["255.255.255.254/31"]
        );
        assert_eq!(nets("fd00::1-fd00::3"), ["fd00::1/128", "fd00::2/127"]);
        assert_eq!(nets("::-::1"), ["::/127"]);
        assert_eq!(
            nets("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"]
        );
        assert_eq!(nets("0.0.0.1-255.255.255.255").len(), 32);
    }

    #[test]
    fn prefixes_and_coverage() {
        let p = AddressRange::of_prefix("198.18.10.7".parse().unwrap(), 28);
        assert_eq!(p, r("198.18.10.0/28"));
        assert!(!r("198.18.10.5-198.18.10.9").covers(&p));
        assert!(r("198.18.10.0/24").covers(&p));
        assert_eq!(
            AddressRange::of_prefix("fd00::7".parse().unwrap(), 0),
            r("::/0")
        );
        assert_eq!(
            AddressRange::of_prefix("198.18.10.7".parse().unwrap(), 32).size(),
            1
        );
        assert!(!r("::/0").covers(&r("0.0.0.0/32")));
    }

    #[test]
    fn unusable_blocks_are_named() {
        for (block, what) in [
            ("127.0.0.0/8", "loopback"),
            ("127.0.0.1/32", "loopback"),
            ("0.0.0.0/32", "this network"),
            ("0.0.0.0/0", "this network"),
            ("126.255.255.250-128.0.0.5", "loopback"),
            ("169.254.1.0/24", "link-local"),
            ("239.255.255.250/32", "multicast"),
            ("255.255.255.255/32", "broadcast"),
            ("255.255.255.0/24", "broadcast"),
            ("::/128", "unspecified"),
            ("::/0", "unspecified"),
            ("::1/128", "loopback"),
            ("::ffff:198.18.0.1/128", "IPv4-mapped"),
            ("fe80::/64", "link-local"),
            ("fe00::-fec0::", "link-local"),
            ("ff02::1/128", "multicast"),
        ] {
            let got = r(block).unusable();
            assert!(
                got.is_some_and(|(_, w)| w.contains(what)),
                "{block}: {got:?}"
            );
        }
        for ok in [
            "198.18.0.0/15",
            "1.0.0.0/8",
            "128.0.0.0/3",
            "223.255.255.255/32",
            "240.0.0.0-255.255.255.254",
            "169.253.0.0/16",
            "::2/127",
            "fd00::/8",
            "2001:db8::/32",
            "fec0::/10",
            "fe00::-fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(r(ok).unusable(), None, "{ok}");
        }
        for (block, _) in UNUSABLE {
            assert!(block.parse::<AddressRange>().is_ok(), "{block}");
        }
    }

    proptest! {
        #[test]
        fn cidrs_tile_the_range_exactly(a in any::<u32>(), b in any::<u32>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            let range = r(&format!("{}-{}", Ipv4Addr::from(lo), Ipv4Addr::from(hi)));
            let parts = range.cidrs();
            prop_assert!(parts.len() <= 62);
            let mut next = u128::from(lo);
            for p in &parts {
                let block = AddressRange::of_prefix(p.network(), p.prefix_len());
                prop_assert_eq!(block.bounds().0, next, "contiguous, in order, aligned");
                prop_assert!(range.covers(&block));
                next = block.bounds().1 + 1;
            }
            prop_assert_eq!(next, u128::from(hi) + 1);
            // Fewest: no two neighbours merge into one aligned block.
            for w in parts.windows(2) {
                prop_assert!(!(w[0].prefix_len() == w[1].prefix_len()
                    && w[0].supernet().is_some_and(|s| s.contains(&w[1]))));
            }
        }

        #[test]
        fn v6_cidrs_tile_the_range(a in any::<u128>(), b in any::<u128>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            let range = r(&format!("{}-{}", Ipv6Addr::from(lo), Ipv6Addr::from(hi)));
            let parts = range.cidrs();
            prop_assert!(parts.len() <= 254);
            let mut next = lo;
            for p in &parts {
                let block = AddressRange::of_prefix(p.network(), p.prefix_len());
                prop_assert_eq!(block.bounds().0, next);
                next = block.bounds().1.wrapping_add(1);
            }
            prop_assert_eq!(next, hi.wrapping_add(1));
        }

        #[test]
        fn any_v4_cidr_roundtrips(ip in any::<u32>(), len in 0u8..=32) {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let net = Ipv4Addr::from(ip & mask);
            let range = r(&format!("{net}/{len}"));
            prop_assert_eq!(range.size(), 1u128 << (32 - len));
            prop_assert!(range.contains(&IpAddr::V4(net)));
            prop_assert_eq!(range.covering_prefix_len(), len);
        }

        #[test]
        fn ranges_parse_iff_ordered(a in any::<u128>(), b in any::<u128>()) {
            let (x, y) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
            let parsed = format!("{x}-{y}").parse::<AddressRange>();
            prop_assert_eq!(parsed.is_ok(), a <= b);
        }
    }
}
