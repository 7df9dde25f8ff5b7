//! When two Services may hold the same address.

use std::collections::BTreeSet;
use std::fmt;

use ferrolb_crds::annotations::ALLOW_SHARED_IP;

use super::service::{Port, Request, TrafficPolicy};

/// The facts of a Service that decide whether it may share an address, as recorded when it took
/// the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharingProfile {
    pub key: Option<String>,
    pub ports: BTreeSet<Port>,
    pub traffic: TrafficPolicy,
}

impl SharingProfile {
    pub fn of(req: &Request) -> SharingProfile {
        SharingProfile {
            // An empty annotation value is no key (MetalLB does the same).
            key: req.sharing_key.clone().filter(|k| !k.is_empty()),
            ports: req.ports.iter().copied().collect(),
            traffic: req.traffic.clone(),
        }
    }

    /// Why a Service with this profile may not hold an address `holder` already holds.
    pub fn conflict_with(&self, holder: &SharingProfile) -> Option<SharingConflict> {
        let (ours, theirs) = match (&self.key, &holder.key) {
            (None, _) => return Some(SharingConflict::NoSharingKey),
            (_, None) => return Some(SharingConflict::HolderNotSharing),
            (Some(a), Some(b)) => (a, b),
        };
        if ours != theirs {
            return Some(SharingConflict::DifferentKey {
                ours: ours.clone(),
                theirs: theirs.clone(),
            });
        }
        if let Some(port) = self.ports.intersection(&holder.ports).next() {
            return Some(SharingConflict::PortCollision(*port));
        }
        match (&self.traffic, &holder.traffic) {
            (TrafficPolicy::Cluster, TrafficPolicy::Cluster) => None,
            (TrafficPolicy::Local { selector: a }, TrafficPolicy::Local { selector: b }) => {
                (a != b).then_some(SharingConflict::SelectorMismatch)
            }
            (a, b) => Some(SharingConflict::TrafficPolicyMismatch {
                ours: a.name(),
                theirs: b.name(),
            }),
        }
    }
}

/// Why an address cannot be shared; the message says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharingConflict {
    /// The Service asking has no sharing key.
    NoSharingKey,
    /// The Service holding the address has no sharing key.
    HolderNotSharing,
    DifferentKey {
        ours: String,
        theirs: String,
    },
    /// Both Services use this (protocol, port).
    PortCollision(Port),
    TrafficPolicyMismatch {
        ours: &'static str,
        theirs: &'static str,
    },
    /// Both are `Local` but select different pods.
    SelectorMismatch,
}

impl fmt::Display for SharingConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharingConflict::NoSharingKey => write!(
                f,
                "this Service has no sharing key: give both Services the same {ALLOW_SHARED_IP} annotation"
            ),
            SharingConflict::HolderNotSharing => write!(
                f,
                "that Service has no sharing key: give both Services the same {ALLOW_SHARED_IP} annotation"
            ),
            SharingConflict::DifferentKey { ours, theirs } => write!(
                f,
                "sharing keys differ ('{ours}' here, '{theirs}' there): use the same {ALLOW_SHARED_IP} value"
            ),
            SharingConflict::PortCollision(port) => {
                write!(f, "both use port {port}: change the port of one of them")
            }
            SharingConflict::TrafficPolicyMismatch { ours, theirs } => write!(
                f,
                "externalTrafficPolicy differs ({ours} here, {theirs} there): use the same policy"
            ),
            SharingConflict::SelectorMismatch => f.write_str(
                "both are externalTrafficPolicy Local but select different pods: Local Services share an address only with the same pod selector",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::service::{ServiceKey, TrafficPolicy};
    use ferrolb_crds::address::Family;
    use std::collections::BTreeMap;

    fn profile(key: Option<&str>, ports: &[Port], traffic: TrafficPolicy) -> SharingProfile {
        let mut req = Request::new(ServiceKey::new("ns", "s"), Family::V4);
        req.sharing_key = key.map(str::to_string);
        req.ports = ports.to_vec();
        req.traffic = traffic;
        SharingProfile::of(&req)
    }

    fn local(app: &str) -> TrafficPolicy {
        TrafficPolicy::Local {
            selector: BTreeMap::from([("app".to_string(), app.to_string())]),
        }
    }

    #[test]
    fn rules() {
        use SharingConflict::*;
        let c = TrafficPolicy::Cluster;
        let k80 = profile(Some("k"), &[Port::tcp(80)], c.clone());
        let k443 = profile(Some("k"), &[Port::tcp(443)], c.clone());
        assert_eq!(k80.conflict_with(&k443), None);
        assert_eq!(k80.conflict_with(&k80), Some(PortCollision(Port::tcp(80))));
        // TCP/53 and UDP/53 coexist.
        let t53 = profile(Some("k"), &[Port::tcp(53)], c.clone());
        let u53 = profile(Some("k"), &[Port::udp(53)], c.clone());
        assert_eq!(t53.conflict_with(&u53), None);
        let none = profile(None, &[Port::tcp(1)], c.clone());
        assert_eq!(none.conflict_with(&k80), Some(NoSharingKey));
        assert_eq!(k80.conflict_with(&none), Some(HolderNotSharing));
        let other = profile(Some("j"), &[Port::tcp(1)], c.clone());
        assert!(matches!(
            k80.conflict_with(&other),
            Some(DifferentKey { .. })
        ));
        let la = profile(Some("k"), &[Port::tcp(1)], local("a"));
        let la2 = profile(Some("k"), &[Port::tcp(2)], local("a"));
        let lb = profile(Some("k"), &[Port::tcp(3)], local("b"));
        assert_eq!(la.conflict_with(&la2), None);
        assert_eq!(la.conflict_with(&lb), Some(SelectorMismatch));
        assert_eq!(
            la.conflict_with(&k80),
            Some(TrafficPolicyMismatch {
                ours: "Local",
                theirs: "Cluster"
            })
        );
        // The empty key is no key.
        let empty = profile(Some(""), &[], c);
        assert_eq!(empty.key, None);
    }

    #[test]
    fn messages_say_what_to_change() {
        let m = SharingConflict::PortCollision(Port::tcp(80)).to_string();
        assert!(m.contains("TCP/80"), "{m}");
        let m = SharingConflict::NoSharingKey.to_string();
        assert!(m.contains(ALLOW_SHARED_IP), "{m}");
        let m = SharingConflict::DifferentKey {
            ours: "a".into(),
            theirs: "b".into(),
        }
        .to_string();
        assert!(m.contains("'a'") && m.contains("'b'"), "{m}");
    }
}
