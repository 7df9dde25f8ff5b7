//! Address conflict detection (RFC 5227 for IPv4, RFC 4862 DAD for IPv6), pure: which of the
//! (address, interface) pairs this node should announce may be announced now, which probes and
//! defences to send, and which conflicts to report.
//!
//! - **Probe before the first announcement.** A pair nobody in FerroLB announced before is not
//!   announced until a short probe finds no other user: ARP probes (sender 0.0.0.0) or DAD
//!   Neighbor Solicitations (from `::`) at [`PROBE_SCHEDULE`], a decision at [`PROBE_WAIT`]. All
//!   pairs probe at once, so the delay added to a first announcement is [`PROBE_WAIT`] whatever
//!   the number of interfaces. RFC 5227's 1–2 s spacing is for hosts joining a LAN; hosts answer
//!   a probe in milliseconds, and three probes cover a lost frame.
//! - **No probe on hand-over.** An address a FerroLB node announced before (the shell says
//!   which: its Service shows `L2Announced` True) is taken over at once, so failover is never
//!   slowed. Claims seen within [`HANDOVER_GRACE`] after such a takeover are not counted: the
//!   former holder may still be sending its gratuitous schedule (2 s) or answering until it sees
//!   the new plan.
//! - **A conflict** is a frame claiming the address from a MAC that is not one of this node's:
//!   an ARP reply or request with the address as sender IP, a Neighbor Advertisement for it, or
//!   (while probing) another host's probe for it.
//! - **Defend once, then report** (RFC 5227 §2.4 (b)): while announcing, the first claim is
//!   answered with one gratuitous announcement; a second within [`DEFEND_INTERVAL`] is reported
//!   and not fought. The address stays announced: giving it up on one foreign frame would let
//!   any host on the LAN take a Service down with a single packet, and the report (condition,
//!   event, metric) lets the operator or the controller move the Service.
//! - **Clearing.** A pair in conflict is probed again after [`REPROBE_FIRST`] doubling to
//!   [`REPROBE_MAX`]; a probe round nobody answers clears it (and announces it if it was held
//!   back).
//!
//! Every field comes from the network: the work per frame is a map lookup, and state changes at
//! most once per pair per frame, so a flood cannot delay other addresses or log per frame.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_shell::backoff::Backoff;

use super::announcer::{Action, DesiredAnnouncements, IfaceName, is_announceable};
use super::frame::{Inbound, MacAddr};

/// Offsets from the start of a probe round at which probes are sent.
pub const PROBE_SCHEDULE: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(200),
];
/// When a probe round nobody answered ends: the bound on the delay added to a first
/// announcement.
pub const PROBE_WAIT: Duration = Duration::from_millis(300);
/// RFC 5227 DEFEND_INTERVAL: at most one defence per this long; a second claim within it is
/// reported.
pub const DEFEND_INTERVAL: Duration = Duration::from_secs(10);
/// After a takeover without probe, claims are not counted for this long (the former holder's
/// gratuitous schedule lasts 2 s).
pub const HANDOVER_GRACE: Duration = Duration::from_secs(5);
/// First re-probe of a pair in conflict, and the cap of its doubling.
pub const REPROBE_FIRST: Duration = Duration::from_secs(10);
pub const REPROBE_MAX: Duration = Duration::from_secs(300);

/// A conflict found: who uses the address, and where it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub ip: IpAddr,
    pub iface: IfaceName,
    pub mac: MacAddr,
    /// True if found while announcing (after one defence), false if by a probe.
    pub while_announcing: bool,
}

impl Detected {
    /// How it was found, for the log.
    pub fn when(&self) -> &'static str {
        if self.while_announcing {
            "while announcing it (defended once, now reported, not fought)"
        } else {
            "by the probe before announcing (not announced)"
        }
    }
}

/// Conflicts per address: the interfaces and the MAC seen there.
pub type Conflicts = BTreeMap<IpAddr, BTreeMap<IfaceName, MacAddr>>;

/// Conflicts detected since start, per interface and address family (`ipv4`, `ipv6`).
pub type ConflictCounts = BTreeMap<(IfaceName, &'static str), u64>;

#[derive(Debug, Clone)]
struct Entry {
    /// Passed a probe, or was taken over from a FerroLB node.
    announced: bool,
    /// A probe round running: when it started and how many probes went out.
    round: Option<(Instant, usize)>,
    /// The other user, while in conflict.
    conflict: Option<MacAddr>,
    reprobe_at: Option<Instant>,
    reprobe: Backoff,
    grace_until: Option<Instant>,
    defended_at: Option<Instant>,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            announced: false,
            round: None,
            conflict: None,
            reprobe_at: None,
            reprobe: Backoff::exact(REPROBE_FIRST, REPROBE_MAX),
            grace_until: None,
            defended_at: None,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match self.round {
            Some((started, sent)) => Some(
                started
                    + PROBE_SCHEDULE
                        .get(sent)
                        .copied()
                        .unwrap_or(PROBE_WAIT)
                        .min(PROBE_WAIT),
            ),
            None => self.reprobe_at,
        }
    }

    /// Marks the pair as in conflict with `mac`; true if that is news.
    fn conflicted(&mut self, mac: MacAddr, now: Instant) -> bool {
        let news = self.conflict.is_none();
        self.conflict = Some(mac);
        self.round = None;
        self.reprobe_at = Some(now + self.reprobe.next_delay());
        news
    }
}

/// The conflict guard of one node.
#[derive(Debug, Default)]
pub struct Guard {
    entries: BTreeMap<(IpAddr, IfaceName), Entry>,
    own_macs: BTreeSet<MacAddr>,
    counts: ConflictCounts,
    detected: Vec<Detected>,
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ipv4" } else { "ipv6" }
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// This node's interface MACs: frames from them are never conflicts (two interfaces of one
    /// node on one segment hear each other).
    pub fn set_own_macs(&mut self, macs: BTreeSet<MacAddr>) {
        self.own_macs = macs;
    }

    /// Takes the new wanted pairs: pairs no longer wanted are forgotten, new ones start a probe
    /// round, or are announced at once when their address is in `announced_before`. Returns the
    /// first probes.
    pub fn set_wanted(
        &mut self,
        wanted: &DesiredAnnouncements,
        announced_before: &BTreeSet<IpAddr>,
        now: Instant,
    ) -> Vec<Action> {
        let pairs: BTreeSet<(IpAddr, &IfaceName)> = wanted
            .iter()
            .filter(|(ip, _)| is_announceable(**ip))
            .flat_map(|(ip, ifaces)| ifaces.iter().map(move |i| (*ip, i)))
            .collect();
        self.entries
            .retain(|(ip, iface), _| pairs.contains(&(*ip, iface)));
        let mut probes = Vec::new();
        for (ip, iface) in pairs {
            let key = (ip, iface.clone());
            if self.entries.contains_key(&key) {
                continue;
            }
            let mut entry = Entry::new();
            if announced_before.contains(&ip) {
                entry.announced = true;
                entry.grace_until = Some(now + HANDOVER_GRACE);
            } else {
                entry.round = Some((now, 1));
                probes.push(Action::Probe {
                    iface: iface.clone(),
                    ip,
                });
            }
            self.entries.insert(key, entry);
        }
        probes
    }

    /// The pairs that may be announced now.
    pub fn cleared(&self) -> DesiredAnnouncements {
        let mut out = DesiredAnnouncements::new();
        for ((ip, iface), _) in self.entries.iter().filter(|(_, e)| e.announced) {
            out.entry(*ip).or_default().insert(iface.clone());
        }
        out
    }

    /// Reads a received frame for claims of a wanted address. At most one action: a defence.
    pub fn on_inbound(&mut self, iface: &str, inbound: &Inbound, now: Instant) -> Option<Action> {
        // (address, claimant, whether it is only a probe for the address)
        let (ip, mac, probe) = match *inbound {
            Inbound::ArpRequest {
                sender_mac,
                sender_ip,
                target_ip,
            } if sender_ip.is_unspecified() => (IpAddr::V4(target_ip), sender_mac, true),
            Inbound::ArpRequest {
                sender_mac,
                sender_ip,
                ..
            }
            | Inbound::ArpReply {
                sender_mac,
                sender_ip,
            } => (IpAddr::V4(sender_ip), sender_mac, false),
            Inbound::NeighborAdvertisement {
                src_mac,
                target,
                target_lladdr,
            } => (IpAddr::V6(target), target_lladdr.unwrap_or(src_mac), false),
            Inbound::NeighborSolicitation {
                src_mac,
                src_ip,
                target,
                ..
            } if src_ip.is_unspecified() => (IpAddr::V6(target), src_mac, true),
            Inbound::NeighborSolicitation { .. } => return None,
        };
        if self.own_macs.contains(&mac) {
            return None;
        }
        let entry = self.entries.get_mut(&(ip, iface.to_owned()))?;
        if entry.grace_until.is_some_and(|until| now < until) {
            return None;
        }
        if entry.round.is_some() {
            // Probing: any claim, a rival probe included, means someone else wants it.
            let while_announcing = entry.announced;
            if entry.conflicted(mac, now) {
                self.report(ip, iface, mac, while_announcing);
            }
            return None;
        }
        // A probe for an address we announce is answered by the announcer (RFC 5227: that is
        // not a conflict for the holder); one waiting for its re-probe stays as it is.
        if probe || !entry.announced || entry.conflict.is_some() {
            return None;
        }
        if entry
            .defended_at
            .is_some_and(|at| now.saturating_duration_since(at) < DEFEND_INTERVAL)
        {
            entry.conflicted(mac, now);
            self.report(ip, iface, mac, true);
            return None;
        }
        entry.defended_at = Some(now);
        Some(Action::SendGratuitous {
            iface: iface.to_owned(),
            ip,
        })
    }

    fn report(&mut self, ip: IpAddr, iface: &str, mac: MacAddr, while_announcing: bool) {
        *self
            .counts
            .entry((iface.to_owned(), family(ip)))
            .or_default() += 1;
        self.detected.push(Detected {
            ip,
            iface: iface.to_owned(),
            mac,
            while_announcing,
        });
    }

    /// Sends the probes that are due, ends the probe rounds that are over and starts the
    /// re-probes that are due. True in the second place when [`Self::cleared`] changed.
    pub fn on_tick(&mut self, now: Instant) -> (Vec<Action>, bool) {
        let mut probes = Vec::new();
        let mut changed = false;
        for ((ip, iface), entry) in &mut self.entries {
            let probe = Action::Probe {
                iface: iface.clone(),
                ip: *ip,
            };
            match entry.round {
                Some((started, _)) if now >= started + PROBE_WAIT => {
                    // Nobody answered: the address is free here.
                    changed |= !entry.announced;
                    entry.announced = true;
                    entry.round = None;
                    entry.conflict = None;
                    entry.reprobe_at = None;
                    entry.reprobe.reset();
                    entry.defended_at = None;
                }
                Some((started, sent)) => {
                    // A late tick sends one probe and skips the slots it missed.
                    let mut next = sent;
                    while PROBE_SCHEDULE
                        .get(next)
                        .is_some_and(|offset| started + *offset <= now)
                    {
                        next += 1;
                    }
                    if next > sent {
                        entry.round = Some((started, next));
                        probes.push(probe);
                    }
                }
                None if entry.reprobe_at.is_some_and(|at| at <= now) => {
                    entry.reprobe_at = None;
                    entry.round = Some((now, 1));
                    probes.push(probe);
                }
                None => {}
            }
        }
        (probes, changed)
    }

    /// When [`Self::on_tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().filter_map(Entry::next_deadline).min()
    }

    /// The pairs in conflict now.
    pub fn conflicts(&self) -> Conflicts {
        let mut out = Conflicts::new();
        for ((ip, iface), entry) in &self.entries {
            if let Some(mac) = entry.conflict {
                out.entry(*ip).or_default().insert(iface.clone(), mac);
            }
        }
        out
    }

    /// Conflicts detected since start (a pair counts again only after it cleared).
    pub fn counts(&self) -> &ConflictCounts {
        &self.counts
    }

    /// The conflicts found since the last call, for the log.
    pub fn take_detected(&mut self) -> Vec<Detected> {
        std::mem::take(&mut self.detected)
    }
}

#[cfg(test)]
mod tests;
