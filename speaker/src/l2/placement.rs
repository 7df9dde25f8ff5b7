//! Where each address is announced: the interface selection the plan gives per address,
//! resolved against the interfaces the last scan found usable (pure).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::announcer::{DesiredAnnouncements, IfaceName};

/// Which interfaces an IP is announced on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfaceSelector {
    /// Every suitable interface not matching [`super::L2Config::ignore_prefixes`].
    All,
    /// Only these (the L2Advertisement's `interfaces`), when suitable.
    Named(BTreeSet<IfaceName>),
}

/// What this node should announce in L2 mode: the IPs it won the election
/// for, and where.
pub type DesiredL2 = BTreeMap<IpAddr, IfaceSelector>;

/// Concrete interfaces for each IP. `for_all` backs [`IfaceSelector::All`];
/// named interfaces must be in `suitable` (named ones are honoured even if
/// an ignore prefix matches them). IPs left with no interface are omitted.
/// Pure.
pub fn resolve(
    desired: &DesiredL2,
    for_all: &BTreeSet<IfaceName>,
    suitable: &BTreeSet<IfaceName>,
) -> DesiredAnnouncements {
    desired
        .iter()
        .filter_map(|(ip, selector)| {
            let ifaces: BTreeSet<IfaceName> = match selector {
                IfaceSelector::All => for_all.clone(),
                IfaceSelector::Named(names) => names.intersection(suitable).cloned().collect(),
            };
            (!ifaces.is_empty()).then_some((*ip, ifaces))
        })
        .collect()
}

/// Which interfaces announcements can use, from the last scan: what lets the speaker say why an
/// address it won is announced nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceScan {
    /// Suitable interfaces (named selectors may use any of them).
    pub suitable: BTreeSet<IfaceName>,
    /// Suitable interfaces not ignored ([`IfaceSelector::All`] uses these).
    pub for_all: BTreeSet<IfaceName>,
    /// Interfaces present but unsuitable, and why (down, no carrier, enslaved...).
    pub unsuitable: BTreeMap<IfaceName, String>,
}

impl InterfaceScan {
    /// Why `selector` resolves to no interface on this node, or None if it resolves to some.
    /// Pure.
    pub fn why_nowhere(&self, selector: &IfaceSelector) -> Option<String> {
        match selector {
            IfaceSelector::All if self.for_all.is_empty() => Some(
                "no suitable interface (every interface is down, unsuitable or ignored)".into(),
            ),
            IfaceSelector::All => None,
            IfaceSelector::Named(names) if names.iter().any(|n| self.suitable.contains(n)) => None,
            IfaceSelector::Named(names) => {
                let each: Vec<String> = names
                    .iter()
                    .map(|n| match self.unsuitable.get(n) {
                        Some(why) => format!("{n} ({why})"),
                        None => format!("{n} (no such interface)"),
                    })
                    .collect();
                Some(format!(
                    "none of its interfaces is usable: {}",
                    each.join(", ")
                ))
            }
        }
    }
}

/// `wanted` limited to interfaces in `ifaces`.
pub(super) fn restrict(
    wanted: &DesiredAnnouncements,
    ifaces: &BTreeSet<&str>,
) -> DesiredAnnouncements {
    wanted
        .iter()
        .filter_map(|(ip, names)| {
            let kept: BTreeSet<IfaceName> = names
                .iter()
                .filter(|n| ifaces.contains(n.as_str()))
                .cloned()
                .collect();
            (!kept.is_empty()).then_some((*ip, kept))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn names(list: &[&str]) -> BTreeSet<IfaceName> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 200, 50));
    const B: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 0x50));

    #[test]
    fn resolve_all_and_named() {
        let suitable = names(&["eth0", "eth1", "veth12"]);
        let for_all = names(&["eth0", "eth1"]);
        let desired = DesiredL2::from([
            (A, IfaceSelector::All),
            (B, IfaceSelector::Named(names(&["eth1", "veth12", "gone0"]))),
        ]);
        let got = resolve(&desired, &for_all, &suitable);
        assert_eq!(got[&A], names(&["eth0", "eth1"]));
        assert_eq!(got[&B], names(&["eth1", "veth12"]));
    }

    #[test]
    fn resolve_drops_ips_without_interfaces() {
        let desired = DesiredL2::from([
            (A, IfaceSelector::All),
            (B, IfaceSelector::Named(names(&["gone0"]))),
        ]);
        assert!(resolve(&desired, &BTreeSet::new(), &names(&["eth0"])).is_empty());
        assert!(resolve(&DesiredL2::new(), &names(&["eth0"]), &names(&["eth0"])).is_empty());
    }

    #[test]
    fn why_nowhere_names_each_missing_interface() {
        let scan = InterfaceScan {
            suitable: names(&["eth0", "veth1"]),
            for_all: names(&["eth0"]),
            unsuitable: BTreeMap::from([("eth9".to_string(), "administratively down".to_string())]),
        };
        assert_eq!(scan.why_nowhere(&IfaceSelector::All), None);
        assert_eq!(
            scan.why_nowhere(&IfaceSelector::Named(names(&["eth0", "gone0"]))),
            None,
            "one usable interface is enough"
        );
        assert_eq!(
            scan.why_nowhere(&IfaceSelector::Named(names(&["veth1"]))),
            None,
            "named interfaces may be ignored ones"
        );
        assert_eq!(
            scan.why_nowhere(&IfaceSelector::Named(names(&["eth9", "gone0"])))
                .as_deref(),
            Some(
                "none of its interfaces is usable: eth9 (administratively down), gone0 (no such interface)"
            )
        );
        let none = InterfaceScan {
            suitable: names(&["veth1"]),
            for_all: BTreeSet::new(),
            unsuitable: BTreeMap::new(),
        };
        assert!(none.why_nowhere(&IfaceSelector::All).is_some());
    }

    #[test]
    fn restrict_keeps_only_given_interfaces() {
        let wanted =
            DesiredAnnouncements::from([(A, names(&["eth0", "eth1"])), (B, names(&["eth1"]))]);
        let got = restrict(&wanted, &BTreeSet::from(["eth0"]));
        assert_eq!(got, DesiredAnnouncements::from([(A, names(&["eth0"]))]));
    }
}
