//! One address as the allocator handles it: a family and an integer (IPv4 in the low 32 bits).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_crds::address::{Family, to_u128};

/// An address of a known family. Ordered by family, then value, so sorted sets are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Addr {
    pub family: Family,
    pub value: u128,
}

impl Addr {
    pub fn of(ip: &IpAddr) -> Addr {
        Addr {
            family: Family::of(ip),
            value: to_u128(ip),
        }
    }

    /// Only called with values taken from an `IpAddr` or from inside an `AddressRange` of the
    /// family, so an IPv4 value always fits 32 bits.
    pub fn new(family: Family, value: u128) -> Addr {
        debug_assert!(family == Family::V6 || value <= u128::from(u32::MAX));
        Addr { family, value }
    }

    pub fn ip(self) -> IpAddr {
        match self.family {
            // Truncation cannot happen: see `new`.
            Family::V4 => IpAddr::V4(Ipv4Addr::from(self.value as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(self.value)),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ip().fmt(f)
    }
}

/// The other family (a dual-stack Service's second family when the spec lists only one).
pub(crate) fn other(family: Family) -> Family {
    match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    }
}

/// IPv4 addresses ending in .0 or .255, which some old client stacks take for network or
/// broadcast addresses (`avoidBuggyIPs`). Never true for IPv6.
pub(crate) fn is_buggy(family: Family, value: u128) -> bool {
    family == Family::V4 && matches!(value & 0xff, 0 | 0xff)
}

/// How many IPv4 addresses in `lo..=hi` end in .0 or .255, without enumerating.
pub(crate) fn buggy_count(lo: u128, hi: u128) -> u128 {
    // Count of x in 0..=n with x % 256 == b.
    fn upto(n: u128, b: u128) -> u128 {
        if n < b { 0 } else { (n - b) / 256 + 1 }
    }
    let below = |b| if lo == 0 { 0 } else { upto(lo - 1, b) };
    (upto(hi, 0) - below(0)) + (upto(hi, 0xff) - below(0xff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buggy_count_matches_enumeration() {
        for (lo, hi) in [
            (0u128, 0u128),
            (0, 255),
            (1, 254),
            (255, 256),
            (250, 1030),
            (7, 7),
        ] {
            let brute = (lo..=hi).filter(|v| is_buggy(Family::V4, *v)).count() as u128;
            assert_eq!(buggy_count(lo, hi), brute, "{lo}..={hi}");
        }
        assert_eq!(buggy_count(0, u128::from(u32::MAX)), 2 * (1 << 24));
        assert!(!is_buggy(Family::V6, 0));
    }

    #[test]
    fn round_trips() {
        for s in ["198.18.0.1", "255.255.255.255", "fd00::1", "::"] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(Addr::of(&ip).ip(), ip);
            assert_eq!(Addr::of(&ip).to_string(), s);
        }
        assert_eq!(other(Family::V4), Family::V6);
        assert_eq!(other(Family::V6), Family::V4);
    }
}
