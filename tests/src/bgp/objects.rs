//! FerroLB objects a test or benchmark makes in ferrolb-system (and Secrets), deleted when it
//! is done with them.

use super::router::{NODE_AS, ROUTERS, Router};
use crate::{host_prefix, lab, object_yaml};

/// FerroLB objects in ferrolb-system (and Secrets), deleted in reverse order when dropped.
#[derive(Default)]
pub struct Objects {
    made: Vec<(String, String)>,
}

impl Objects {
    pub fn new() -> Objects {
        Objects::default()
    }

    /// Applies a `ferrolb.io/v1beta1` object with this spec (YAML flow or block).
    pub fn apply(&mut self, kind: &str, name: &str, spec: &str) {
        let yaml = object_yaml(kind, name, spec);
        let r = lab().apply(&yaml);
        assert!(r.ok, "applying {kind} {name}: {}\n{yaml}", r.stderr);
        self.remember(kind, name);
    }

    /// An IPAddressPool of host routes for `addresses` (autoAssign off: only Services that name
    /// it get them) and an advertisement of it (`adv_kind`: BGPAdvertisement, L2Advertisement)
    /// with `adv_extra` spec fields (`key: value, ...`), both named `name`.
    pub fn advertised_pool(
        &mut self,
        name: &str,
        addresses: &[&str],
        adv_kind: &str,
        adv_extra: &str,
    ) {
        let addrs = addresses
            .iter()
            .map(|a| format!("'{}'", host_prefix(a)))
            .collect::<Vec<_>>()
            .join(", ");
        self.apply(
            "IPAddressPool",
            name,
            &format!("{{addresses: [{addrs}], autoAssign: false}}"),
        );
        let sep = if adv_extra.is_empty() { "" } else { ", " };
        self.apply(
            adv_kind,
            name,
            &format!("{{ipAddressPools: [{name}]{sep}{adv_extra}}}"),
        );
    }

    /// A `kubernetes.io/basic-auth` Secret whose `password` key is `password`.
    pub fn secret(&mut self, name: &str, password: &str) {
        let yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/basic-auth\n\
             stringData: {{password: '{password}'}}\n"
        );
        let r = lab().apply(&yaml);
        assert!(r.ok, "applying Secret {name}: {}", r.stderr);
        self.remember("Secret", name);
    }

    /// A BGPPeer from our AS to `router` over IPv4 or IPv6, with short timers (hold 9 s,
    /// keepalive 3 s, connect 1 s) and `extra` spec fields (`key: value, ...`).
    pub fn peer(&mut self, name: &str, router: Router, v6: bool, extra: &str) {
        self.peer_as(name, router, router.asn, v6, extra);
    }

    /// A [`peer`](Self::peer) to each router over each family, named `PREFIX-ROUTER4` and
    /// `PREFIX-ROUTER6`; returns `(name, router, v6)` of each.
    pub fn peers_everywhere(&mut self, prefix: &str, extra: &str) -> Vec<(String, Router, bool)> {
        let mut out = Vec::new();
        for r in ROUTERS {
            for v6 in [false, true] {
                let name = format!("{prefix}-{}{}", r.name, if v6 { 6 } else { 4 });
                self.peer(&name, r, v6, extra);
                out.push((name, r, v6));
            }
        }
        out
    }

    pub fn peer_as(&mut self, name: &str, router: Router, peer_asn: u32, v6: bool, extra: &str) {
        let sep = if extra.is_empty() { "" } else { ", " };
        self.apply(
            "BGPPeer",
            name,
            &format!(
                "{{myASN: {NODE_AS}, peerASN: {peer_asn}, peerAddress: '{}', holdTime: 9s, \
                 keepaliveTime: 3s, connectTime: 1s{sep}{extra}}}",
                router.addr(v6)
            ),
        );
    }

    /// Merge-patches an object's spec.
    pub fn patch_spec(&self, kind: &str, name: &str, spec_json: &str) {
        let r = lab().kubectl(&[
            "patch",
            kind,
            name,
            "-n",
            ferrolb_crds::DEFAULT_NAMESPACE,
            "--type",
            "merge",
            "-p",
            &format!("{{\"spec\": {spec_json}}}"),
        ]);
        assert!(r.ok, "patching {kind} {name}: {}", r.stderr);
    }

    /// Deletes an object made elsewhere (e.g. through the API) along with ours.
    pub fn adopt(&mut self, kind: &str, name: &str) {
        self.remember(kind, name);
    }

    pub fn delete(&mut self, kind: &str, name: &str) {
        delete(kind, name);
        self.made.retain(|(k, n)| !(k == kind && n == name));
    }

    fn remember(&mut self, kind: &str, name: &str) {
        let o = (kind.to_string(), name.to_string());
        if !self.made.contains(&o) {
            self.made.push(o);
        }
    }
}

fn delete(kind: &str, name: &str) {
    let _ = lab().kubectl(&[
        "delete",
        kind,
        name,
        "-n",
        ferrolb_crds::DEFAULT_NAMESPACE,
        "--ignore-not-found",
    ]);
}

impl Drop for Objects {
    fn drop(&mut self) {
        for (kind, name) in self.made.drain(..).rev() {
            delete(&kind, &name);
        }
    }
}
