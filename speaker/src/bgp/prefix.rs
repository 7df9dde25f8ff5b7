//! IP prefixes and next hops as BGP carries them, and the address families (AFI/SAFI) they
//! belong to. Shared by the codec (NLRI, MP_REACH next hops) and the routes we originate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Address families this speaker knows (AFI/SAFI pairs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (1, 1),
            Family::Ipv6Unicast => (2, 1),
        }
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Self> {
        match (afi, safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::Ipv4Unicast,
            IpAddr::V6(_) => Family::Ipv6Unicast,
        }
    }

    /// The address width in bits: the longest prefix of the family.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            Family::Ipv4Unicast => 32,
            Family::Ipv6Unicast => 128,
        }
    }
}

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
        let max = Family::of(&addr).max_prefix_len();
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
            len: Family::of(&addr).max_prefix_len(),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Bytes used by this prefix in an NLRI field: length octet + significant octets.
    pub fn wire_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
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

#[cfg(test)]
mod tests;
