//! The announcer state machine: what to send, given what this node should
//! announce, the frames it receives and the time. Pure: the shell feeds it
//! events and executes the returned [`Action`]s.
//!
//! Rules:
//! - Answer an ARP request / Neighbor Solicitation only for an IP announced
//!   on the interface it arrived on; never for anything else.
//! - Stop answering the moment an IP leaves the desired set.
//! - On takeover (an IP newly announced on an interface) send gratuitous
//!   announcements on the [`GRATUITOUS_SCHEDULE`]; neighbours that already
//!   cache the VIP switch to us at the first one that arrives.
//! - Defend an owned IPv6 VIP against DAD probes with an NA to all-nodes
//!   (RFC 4861 §7.2.4), and owned IPv4 VIPs against ARP probes with an
//!   ordinary reply (as Linux does).
//! - An ARP announcement by someone else for an owned VIP is counted as a
//!   conflict, not answered: fighting back would ping-pong with a
//!   split-brained peer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::frame::{self, DropReason, Inbound, MacAddr, NaDestination};

/// Name of a network interface, e.g. `eth0`.
pub type IfaceName = String;

/// What this node should announce: each IP and the interfaces to announce
/// it on.
pub type DesiredAnnouncements = BTreeMap<IpAddr, BTreeSet<IfaceName>>;

/// Offsets from takeover at which gratuitous announcements are sent.
///
/// Front-loaded for fast convergence: the first at once, then retries at
/// 100 ms and 500 ms cover a frame lost to a switch still learning or a
/// briefly busy client, and 1 s / 2 s cover slower links. Five in 2 s
/// (MetalLB: one per 1.1 s for 5 s) keeps the burst small per VIP.
pub const GRATUITOUS_SCHEDULE: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Announce `ip` on `iface` unprompted: for IPv4 a gratuitous ARP
    /// request and reply, for IPv6 an unsolicited NA to all-nodes.
    SendGratuitous { iface: IfaceName, ip: IpAddr },
    /// Answer a request received on `iface`.
    Reply { iface: IfaceName, reply: Reply },
    /// Start receiving Neighbor Solicitations sent to `group` on `iface`.
    JoinGroup { iface: IfaceName, group: Ipv6Addr },
    /// Stop receiving `group` on `iface`: no announced VIP maps to it anymore.
    LeaveGroup { iface: IfaceName, group: Ipv6Addr },
    /// Ask whether another host uses `ip` on `iface` (see `conflict.rs`): an RFC 5227 ARP
    /// probe, or a DAD Neighbor Solicitation.
    Probe { iface: IfaceName, ip: IpAddr },
}

/// An answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Arp {
        vip: Ipv4Addr,
        to_mac: MacAddr,
        to_ip: Ipv4Addr,
    },
    Neighbor {
        vip: Ipv6Addr,
        to: NaDestination,
    },
}

impl Action {
    /// Interface the action applies to.
    pub fn iface(&self) -> &str {
        match self {
            Self::SendGratuitous { iface, .. }
            | Self::Reply { iface, .. }
            | Self::JoinGroup { iface, .. }
            | Self::LeaveGroup { iface, .. }
            | Self::Probe { iface, .. } => iface,
        }
    }

    /// Frames to send for this action from an interface with MAC `our_mac`;
    /// empty for group membership changes.
    pub fn frames(&self, our_mac: MacAddr) -> Vec<Vec<u8>> {
        match *self {
            Self::SendGratuitous {
                ip: IpAddr::V4(ip), ..
            } => vec![
                frame::gratuitous_arp_request(our_mac, ip),
                frame::gratuitous_arp_reply(our_mac, ip),
            ],
            Self::SendGratuitous {
                ip: IpAddr::V6(ip), ..
            } => vec![frame::unsolicited_neighbor_advertisement(our_mac, ip)],
            Self::Reply {
                reply: Reply::Arp { vip, to_mac, to_ip },
                ..
            } => vec![frame::arp_reply(our_mac, vip, to_mac, to_ip)],
            Self::Reply {
                reply: Reply::Neighbor { vip, to },
                ..
            } => vec![frame::neighbor_advertisement(our_mac, vip, to)],
            Self::Probe {
                ip: IpAddr::V4(ip), ..
            } => vec![frame::arp_request(our_mac, Ipv4Addr::UNSPECIFIED, ip)],
            Self::Probe {
                ip: IpAddr::V6(ip), ..
            } => vec![frame::neighbor_solicitation(
                our_mac,
                Ipv6Addr::UNSPECIFIED,
                ip,
            )],
            Self::JoinGroup { .. } | Self::LeaveGroup { .. } => Vec::new(),
        }
    }
}

/// Counters for metrics; monotonic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to [`Announcer::on_frame`].
    pub frames_received: u64,
    /// Well-formed ARP requests / NS for an IP announced on that interface.
    pub requests_received: u64,
    /// Replies emitted.
    pub replies_sent: u64,
    /// Gratuitous announcements emitted (one per IP and interface and
    /// schedule slot, whatever the number of frames).
    pub gratuitous_sent: u64,
    /// Frames dropped as invalid.
    pub malformed_dropped: u64,
    /// Well-formed frames needing no answer (not ours, other interface,
    /// not a request).
    pub ignored: u64,
    /// ARP announcements by another station for an IP we announce.
    pub conflicts_seen: u64,
    /// Drops (malformed and ignored) by reason.
    pub dropped: BTreeMap<DropReason, u64>,
}

/// One IP being announced on one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announcement {
    since: Instant,
    /// Index into [`GRATUITOUS_SCHEDULE`] of the next gratuitous send.
    next: usize,
}

impl Announcement {
    fn due(&self) -> Option<Instant> {
        GRATUITOUS_SCHEDULE
            .get(self.next)
            .map(|offset| self.since + *offset)
    }
}

/// The L2 announcer for one node.
#[derive(Debug, Default)]
pub struct Announcer {
    by_iface: BTreeMap<IfaceName, BTreeMap<IpAddr, Announcement>>,
    counters: Counters,
}

/// True for addresses a neighbour could resolve: not unspecified, loopback,
/// multicast or the IPv4 broadcast. Others in the desired set are skipped.
pub fn is_announceable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast())
        }
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_loopback() || v6.is_multicast()),
    }
}

impl Announcer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// True if `ip` is announced on `iface`.
    pub fn is_announcing(&self, ip: IpAddr, iface: &str) -> bool {
        self.by_iface
            .get(iface)
            .is_some_and(|ips| ips.contains_key(&ip))
    }

    /// What is announced now, in the shape of [`Self::set_desired`]'s input.
    pub fn announcing(&self) -> DesiredAnnouncements {
        let mut out = DesiredAnnouncements::new();
        for (iface, ips) in &self.by_iface {
            for ip in ips.keys() {
                out.entry(*ip).or_default().insert(iface.clone());
            }
        }
        out
    }

    /// Replaces the desired announcements. Removed (IP, interface) pairs stop
    /// being answered at once; new pairs start their gratuitous schedule now;
    /// pairs present before and after are left alone (no new burst).
    ///
    /// Actions come in order: group leaves, group joins, gratuitous sends.
    pub fn set_desired(&mut self, desired: &DesiredAnnouncements, now: Instant) -> Vec<Action> {
        let groups_before = self.groups();

        let mut wanted: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
        for (ip, ifaces) in desired {
            if !is_announceable(*ip) {
                continue;
            }
            for iface in ifaces {
                wanted.entry(iface.as_str()).or_default().insert(*ip);
            }
        }

        self.by_iface.retain(|iface, ips| {
            let keep = wanted.get(iface.as_str());
            ips.retain(|ip, _| keep.is_some_and(|k| k.contains(ip)));
            !ips.is_empty()
        });

        let mut gratuitous = Vec::new();
        for (iface, ips) in wanted {
            let current = self.by_iface.entry(iface.to_owned()).or_default();
            for ip in ips {
                if current.contains_key(&ip) {
                    continue;
                }
                current.insert(
                    ip,
                    Announcement {
                        since: now,
                        next: 1,
                    },
                );
                gratuitous.push(Action::SendGratuitous {
                    iface: iface.to_owned(),
                    ip,
                });
            }
        }
        self.counters.gratuitous_sent += gratuitous.len() as u64;

        let groups_after = self.groups();
        let mut actions: Vec<Action> = groups_before
            .difference(&groups_after)
            .map(|(iface, group)| Action::LeaveGroup {
                iface: iface.clone(),
                group: *group,
            })
            .collect();
        actions.extend(
            groups_after
                .difference(&groups_before)
                .map(|(iface, group)| Action::JoinGroup {
                    iface: iface.clone(),
                    group: *group,
                }),
        );
        actions.extend(gratuitous);
        actions
    }

    /// Restarts the gratuitous schedule of everything announced (a burst now, then the rest of
    /// the schedule). For when a node comes back from a partition: while cut off it believed
    /// itself the announcer, and the neighbours that heard it on its way back point at its MAC.
    pub fn reassert(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for (iface, ips) in &mut self.by_iface {
            for (ip, announcement) in ips.iter_mut() {
                *announcement = Announcement {
                    since: now,
                    next: 1,
                };
                actions.push(Action::SendGratuitous {
                    iface: iface.clone(),
                    ip: *ip,
                });
            }
        }
        self.counters.gratuitous_sent += actions.len() as u64;
        actions
    }

    /// Solicited-node groups needed for the IPv6 VIPs, per interface.
    fn groups(&self) -> BTreeSet<(IfaceName, Ipv6Addr)> {
        self.by_iface
            .iter()
            .flat_map(|(iface, ips)| {
                ips.keys().filter_map(move |ip| match ip {
                    IpAddr::V6(v6) => Some((iface.clone(), frame::solicited_node_multicast(*v6))),
                    IpAddr::V4(_) => None,
                })
            })
            .collect()
    }

    /// Handles a frame received on `iface`. At most one action.
    pub fn on_frame(&mut self, iface: &str, bytes: &[u8]) -> Option<Action> {
        self.on_parsed(iface, &frame::parse(bytes))
    }

    /// Handles a frame received on `iface` that the shell parsed already (it also reads it for
    /// conflicts). At most one action.
    pub fn on_parsed(
        &mut self,
        iface: &str,
        parsed: &Result<Inbound, DropReason>,
    ) -> Option<Action> {
        self.counters.frames_received += 1;
        match *parsed {
            Ok(ref inbound) => self.on_inbound(iface, inbound),
            Err(reason) => {
                if reason.is_malformed() {
                    self.counters.malformed_dropped += 1;
                } else {
                    self.counters.ignored += 1;
                }
                *self.counters.dropped.entry(reason).or_default() += 1;
                None
            }
        }
    }

    /// Handles an already parsed frame received on `iface`.
    pub fn on_inbound(&mut self, iface: &str, inbound: &Inbound) -> Option<Action> {
        let target = match *inbound {
            Inbound::ArpRequest { target_ip, .. } => IpAddr::V4(target_ip),
            Inbound::NeighborSolicitation { target, .. } => IpAddr::V6(target),
            // Claims, read by the conflict guard; nothing to answer.
            Inbound::ArpReply { .. } | Inbound::NeighborAdvertisement { .. } => {
                self.counters.ignored += 1;
                return None;
            }
        };
        if !self.is_announcing(target, iface) {
            self.counters.ignored += 1;
            return None;
        }
        let reply = match *inbound {
            Inbound::ArpRequest {
                sender_ip,
                target_ip,
                ..
            } if sender_ip == target_ip => {
                self.counters.conflicts_seen += 1;
                return None;
            }
            Inbound::ArpRequest {
                sender_mac,
                sender_ip,
                target_ip,
            } => Reply::Arp {
                vip: target_ip,
                to_mac: sender_mac,
                to_ip: sender_ip,
            },
            Inbound::ArpReply { .. } | Inbound::NeighborAdvertisement { .. } => return None,
            Inbound::NeighborSolicitation {
                src_mac,
                src_ip,
                target,
                source_lladdr,
            } => Reply::Neighbor {
                vip: target,
                to: if src_ip.is_unspecified() {
                    NaDestination::AllNodes
                } else {
                    // RFC 4861 §7.2.4: reply to the link-layer address the
                    // solicitor gave, else to where the frame came from.
                    NaDestination::Solicitor {
                        mac: source_lladdr.unwrap_or(src_mac),
                        ip: src_ip,
                    }
                },
            },
        };
        self.counters.requests_received += 1;
        self.counters.replies_sent += 1;
        Some(Action::Reply {
            iface: iface.to_owned(),
            reply,
        })
    }

    /// Sends the gratuitous announcements that are due. A late tick sends
    /// one announcement per pair and skips the slots it missed, so a stalled
    /// shell never bursts.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for (iface, ips) in &mut self.by_iface {
            for (ip, announcement) in ips.iter_mut() {
                if announcement.due().is_none_or(|due| due > now) {
                    continue;
                }
                while announcement.due().is_some_and(|due| due <= now) {
                    announcement.next += 1;
                }
                actions.push(Action::SendGratuitous {
                    iface: iface.clone(),
                    ip: *ip,
                });
            }
        }
        self.counters.gratuitous_sent += actions.len() as u64;
        actions
    }

    /// When [`Self::on_tick`] next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_iface
            .values()
            .flat_map(|ips| ips.values())
            .filter_map(Announcement::due)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const OTHER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x03]);
    const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 50);
    const VIP4B: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 51);
    const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 2);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 0x50);
    /// Same solicited-node group as VIP6 (same low 24 bits).
    const VIP6_TWIN: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 0x50);
    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 2);

    fn desired(entries: &[(IpAddr, &[&str])]) -> DesiredAnnouncements {
        entries
            .iter()
            .map(|(ip, ifaces)| (*ip, ifaces.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn v4(ip: Ipv4Addr) -> IpAddr {
        IpAddr::V4(ip)
    }

    fn v6(ip: Ipv6Addr) -> IpAddr {
        IpAddr::V6(ip)
    }

    fn grat(iface: &str, ip: IpAddr) -> Action {
        Action::SendGratuitous {
            iface: iface.into(),
            ip,
        }
    }

    fn arp_req(sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
        frame::arp_request(CLIENT_MAC, sender_ip, target_ip)
    }

    #[test]
    fn new_announcer_is_idle() {
        let mut a = Announcer::new();
        assert_eq!(a.next_deadline(), None);
        assert!(a.on_tick(Instant::now()).is_empty());
        assert!(a.announcing().is_empty());
        assert_eq!(a.counters(), &Counters::default());
    }

    #[test]
    fn takeover_sends_gratuitous_on_schedule() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        let actions = a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), t0);
        assert_eq!(actions, vec![grat("eth0", v4(VIP4))]);
        let mut sent_at = vec![Duration::ZERO];
        // Tick every millisecond for 3 s: exactly the schedule, no more.
        for ms in 0..3000 {
            let now = t0 + Duration::from_millis(ms);
            for action in a.on_tick(now) {
                assert_eq!(action, grat("eth0", v4(VIP4)));
                sent_at.push(now - t0);
            }
        }
        assert_eq!(sent_at, GRATUITOUS_SCHEDULE.to_vec());
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.counters().gratuitous_sent, 5);
    }

    #[test]
    fn next_deadline_follows_schedule() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), t0);
        for offset in &GRATUITOUS_SCHEDULE[1..] {
            let due = a.next_deadline();
            assert_eq!(due, Some(t0 + *offset));
            // Ticking early does nothing.
            assert!(
                a.on_tick(t0 + *offset - Duration::from_millis(1))
                    .is_empty()
            );
            assert_eq!(a.on_tick(t0 + *offset).len(), 1);
        }
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn late_tick_sends_once_and_skips_missed_slots() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), t0);
        // Stalled until 1.2 s: slots 100 ms, 500 ms, 1 s collapse into one.
        assert_eq!(a.on_tick(t0 + Duration::from_millis(1200)).len(), 1);
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(a.on_tick(t0 + Duration::from_secs(60)).len(), 1);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.counters().gratuitous_sent, 3);
    }

    #[test]
    fn unchanged_desired_does_not_restart_schedule() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        let d = desired(&[(v4(VIP4), &["eth0"])]);
        a.set_desired(&d, t0);
        a.on_tick(t0 + Duration::from_secs(5));
        assert!(a.set_desired(&d, t0 + Duration::from_secs(6)).is_empty());
        assert_eq!(a.next_deadline(), None);
    }

    #[test]
    fn each_interface_is_its_own_takeover() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), t0);
        assert_eq!(a.on_tick(t0 + Duration::from_secs(5)).len(), 1);
        let t1 = t0 + Duration::from_secs(10);
        let actions = a.set_desired(&desired(&[(v4(VIP4), &["eth0", "eth1"])]), t1);
        assert_eq!(actions, vec![grat("eth1", v4(VIP4))]);
        assert_eq!(a.next_deadline(), Some(t1 + GRATUITOUS_SCHEDULE[1]));
        assert_eq!(
            a.on_tick(t1 + GRATUITOUS_SCHEDULE[1]),
            vec![grat("eth1", v4(VIP4))]
        );
    }

    #[test]
    fn readding_restarts_schedule() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        let d = desired(&[(v4(VIP4), &["eth0"])]);
        a.set_desired(&d, t0);
        a.set_desired(&DesiredAnnouncements::new(), t0 + Duration::from_secs(1));
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(a.set_desired(&d, t2), vec![grat("eth0", v4(VIP4))]);
        assert_eq!(a.next_deadline(), Some(t2 + GRATUITOUS_SCHEDULE[1]));
    }

    #[test]
    fn reassert_restarts_every_schedule_and_nothing_else() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        assert!(a.reassert(t0).is_empty(), "nothing announced, nothing sent");
        let d = desired(&[(v4(VIP4), &["eth0", "eth1"]), (v6(VIP6), &["eth0"])]);
        a.set_desired(&d, t0);
        // Let the first schedule run out.
        let late = t0 + Duration::from_secs(10);
        a.on_tick(late);
        assert_eq!(a.next_deadline(), None);
        let before = a.counters().gratuitous_sent;
        let sent = a.reassert(late);
        assert_eq!(
            sent,
            vec![
                grat("eth0", v4(VIP4)),
                grat("eth0", v6(VIP6)),
                grat("eth1", v4(VIP4)),
            ]
        );
        assert_eq!(a.counters().gratuitous_sent, before + 3);
        assert_eq!(a.next_deadline(), Some(late + GRATUITOUS_SCHEDULE[1]));
        assert_eq!(a.announcing(), d, "the announced set is unchanged");
    }

    #[test]
    fn removal_stops_gratuitous_and_answers_at_once() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), t0);
        assert!(a.on_frame("eth0", &arp_req(CLIENT4, VIP4)).is_some());
        assert!(a.set_desired(&DesiredAnnouncements::new(), t0).is_empty());
        assert_eq!(a.next_deadline(), None);
        assert!(a.on_tick(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(a.on_frame("eth0", &arp_req(CLIENT4, VIP4)), None);
        assert!(a.announcing().is_empty());
    }

    #[test]
    fn answers_arp_for_owned_ip_on_its_interface_only() {
        let t0 = Instant::now();
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), t0);
        let action = a.on_frame("eth0", &arp_req(CLIENT4, VIP4));
        assert_eq!(
            action,
            Some(Action::Reply {
                iface: "eth0".into(),
                reply: Reply::Arp {
                    vip: VIP4,
                    to_mac: CLIENT_MAC,
                    to_ip: CLIENT4
                }
            })
        );
        // Wrong interface, other IP: silence.
        assert_eq!(a.on_frame("eth1", &arp_req(CLIENT4, VIP4)), None);
        assert_eq!(a.on_frame("eth0", &arp_req(CLIENT4, VIP4B)), None);
        let c = a.counters();
        assert_eq!(c.frames_received, 3);
        assert_eq!(c.requests_received, 1);
        assert_eq!(c.replies_sent, 1);
        assert_eq!(c.ignored, 2);
        assert_eq!(c.malformed_dropped, 0);
    }

    #[test]
    fn arp_probe_is_answered_announcement_is_a_conflict() {
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), Instant::now());
        assert_eq!(
            a.on_frame("eth0", &arp_req(Ipv4Addr::UNSPECIFIED, VIP4)),
            Some(Action::Reply {
                iface: "eth0".into(),
                reply: Reply::Arp {
                    vip: VIP4,
                    to_mac: CLIENT_MAC,
                    to_ip: Ipv4Addr::UNSPECIFIED
                }
            })
        );
        assert_eq!(
            a.on_frame("eth0", &frame::gratuitous_arp_request(OTHER_MAC, VIP4)),
            None
        );
        assert_eq!(a.counters().conflicts_seen, 1);
        // Someone else's announcement for an IP we do not own is not a conflict.
        assert_eq!(
            a.on_frame("eth0", &frame::gratuitous_arp_request(OTHER_MAC, VIP4B)),
            None
        );
        assert_eq!(a.counters().conflicts_seen, 1);
    }

    #[test]
    fn answers_ns_unicast_using_source_lladdr() {
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v6(VIP6), &["eth0"])]), Instant::now());
        let ns = frame::neighbor_solicitation(CLIENT_MAC, CLIENT6, VIP6);
        assert_eq!(
            a.on_frame("eth0", &ns),
            Some(Action::Reply {
                iface: "eth0".into(),
                reply: Reply::Neighbor {
                    vip: VIP6,
                    to: NaDestination::Solicitor {
                        mac: CLIENT_MAC,
                        ip: CLIENT6
                    }
                }
            })
        );
        assert_eq!(a.on_frame("eth1", &ns), None);
        let other = frame::neighbor_solicitation(CLIENT_MAC, CLIENT6, VIP6_TWIN);
        assert_eq!(a.on_frame("eth0", &other), None);
    }

    #[test]
    fn ns_reply_falls_back_to_ethernet_source() {
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v6(VIP6), &["eth0"])]), Instant::now());
        let inbound = Inbound::NeighborSolicitation {
            src_mac: OTHER_MAC,
            src_ip: CLIENT6,
            target: VIP6,
            source_lladdr: None,
        };
        assert_eq!(
            a.on_inbound("eth0", &inbound),
            Some(Action::Reply {
                iface: "eth0".into(),
                reply: Reply::Neighbor {
                    vip: VIP6,
                    to: NaDestination::Solicitor {
                        mac: OTHER_MAC,
                        ip: CLIENT6
                    }
                }
            })
        );
    }

    #[test]
    fn dad_probe_is_defended_via_all_nodes() {
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v6(VIP6), &["eth0"])]), Instant::now());
        let probe = frame::neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6);
        let action = a.on_frame("eth0", &probe);
        assert_eq!(
            action,
            Some(Action::Reply {
                iface: "eth0".into(),
                reply: Reply::Neighbor {
                    vip: VIP6,
                    to: NaDestination::AllNodes
                }
            })
        );
        // The frame goes to ff02::1, never to the unspecified address.
        let frames = action.map(|a| a.frames(OUR_MAC)).unwrap_or_default();
        assert_eq!(frames.len(), 1);
        assert_eq!(&frames[0][..6], &[0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn malformed_and_ignored_frames_are_counted_by_reason() {
        let mut a = Announcer::new();
        a.set_desired(&desired(&[(v4(VIP4), &["eth0"])]), Instant::now());
        assert_eq!(a.on_frame("eth0", &[]), None);
        assert_eq!(a.on_frame("eth0", &arp_req(CLIENT4, VIP4)[..30]), None);
        assert_eq!(
            a.on_frame("eth0", &frame::arp_reply(CLIENT_MAC, VIP4, OUR_MAC, VIP4)),
            None
        );
        let c = a.counters();
        assert_eq!(c.malformed_dropped, 2);
        assert_eq!(c.ignored, 1);
        assert_eq!(c.dropped.get(&DropReason::TruncatedEthernet), Some(&1));
        assert_eq!(c.dropped.get(&DropReason::TruncatedArp), Some(&1));
        // A reply is a claim for the conflict guard, not a drop.
        assert_eq!(c.dropped.get(&DropReason::ArpNotRequest), None);
        assert_eq!(c.replies_sent, 0);
    }

    #[test]
    fn groups_joined_and_left_with_refcount_semantics() {
        let t0 = Instant::now();
        let group = frame::solicited_node_multicast(VIP6);
        assert_eq!(group, frame::solicited_node_multicast(VIP6_TWIN));
        let mut a = Announcer::new();
        let actions = a.set_desired(
            &desired(&[(v6(VIP6), &["eth0"]), (v4(VIP4), &["eth0"])]),
            t0,
        );
        assert_eq!(
            actions,
            vec![
                Action::JoinGroup {
                    iface: "eth0".into(),
                    group
                },
                grat("eth0", v4(VIP4)),
                grat("eth0", v6(VIP6)),
            ]
        );
        // A second VIP on the same group: no new join.
        let actions = a.set_desired(
            &desired(&[(v6(VIP6), &["eth0"]), (v6(VIP6_TWIN), &["eth0"])]),
            t0,
        );
        assert_eq!(actions, vec![grat("eth0", v6(VIP6_TWIN))]);
        // Dropping one of the two keeps the group.
        assert!(
            a.set_desired(&desired(&[(v6(VIP6_TWIN), &["eth0"])]), t0)
                .is_empty()
        );
        // Moving to another interface: leave first, then join, then announce.
        let actions = a.set_desired(&desired(&[(v6(VIP6_TWIN), &["eth1"])]), t0);
        assert_eq!(
            actions,
            vec![
                Action::LeaveGroup {
                    iface: "eth0".into(),
                    group
                },
                Action::JoinGroup {
                    iface: "eth1".into(),
                    group
                },
                grat("eth1", v6(VIP6_TWIN)),
            ]
        );
        let actions = a.set_desired(&DesiredAnnouncements::new(), t0);
        assert_eq!(
            actions,
            vec![Action::LeaveGroup {
                iface: "eth1".into(),
                group
            }]
        );
    }

    #[test]
    fn unannounceable_ips_are_skipped() {
        let mut a = Announcer::new();
        let bad = [
            v4(Ipv4Addr::UNSPECIFIED),
            v4(Ipv4Addr::LOCALHOST),
            v4(Ipv4Addr::BROADCAST),
            v4(Ipv4Addr::new(239, 1, 1, 1)),
            v6(Ipv6Addr::UNSPECIFIED),
            v6(Ipv6Addr::LOCALHOST),
            v6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
        ];
        let d: DesiredAnnouncements = bad
            .iter()
            .map(|ip| (*ip, BTreeSet::from(["eth0".to_owned()])))
            .collect();
        assert!(a.set_desired(&d, Instant::now()).is_empty());
        assert!(a.announcing().is_empty());
        assert!(is_announceable(v4(VIP4)));
        assert!(is_announceable(v6(VIP6)));
    }

    #[test]
    fn empty_interface_set_announces_nothing() {
        let mut a = Announcer::new();
        let d = desired(&[(v4(VIP4), &[])]);
        assert!(a.set_desired(&d, Instant::now()).is_empty());
        assert!(a.announcing().is_empty());
    }

    #[test]
    fn action_frames() {
        let g4 = grat("eth0", v4(VIP4)).frames(OUR_MAC);
        assert_eq!(
            g4,
            vec![
                frame::gratuitous_arp_request(OUR_MAC, VIP4),
                frame::gratuitous_arp_reply(OUR_MAC, VIP4)
            ]
        );
        let g6 = grat("eth0", v6(VIP6)).frames(OUR_MAC);
        assert_eq!(
            g6,
            vec![frame::unsolicited_neighbor_advertisement(OUR_MAC, VIP6)]
        );
        let reply = Action::Reply {
            iface: "eth0".into(),
            reply: Reply::Arp {
                vip: VIP4,
                to_mac: CLIENT_MAC,
                to_ip: CLIENT4,
            },
        };
        assert_eq!(reply.iface(), "eth0");
        assert_eq!(
            reply.frames(OUR_MAC),
            vec![frame::arp_reply(OUR_MAC, VIP4, CLIENT_MAC, CLIENT4)]
        );
        let join = Action::JoinGroup {
            iface: "eth2".into(),
            group: frame::solicited_node_multicast(VIP6),
        };
        assert_eq!(join.iface(), "eth2");
        assert!(join.frames(OUR_MAC).is_empty());
    }

    #[test]
    fn announcing_reports_current_state() {
        let mut a = Announcer::new();
        let d = desired(&[(v4(VIP4), &["eth0", "eth1"]), (v6(VIP6), &["eth1"])]);
        a.set_desired(&d, Instant::now());
        assert_eq!(a.announcing(), d);
        assert!(a.is_announcing(v4(VIP4), "eth1"));
        assert!(!a.is_announcing(v6(VIP6), "eth0"));
    }

    /// Model-based check: after any sequence of operations the announcer
    /// answers exactly for the current desired set, and its group actions
    /// keep joined groups equal to what the announced IPv6 VIPs need.
    #[derive(Debug, Clone)]
    enum Op {
        Set(Vec<(u8, u8)>),
        Tick(u16),
        Arp(u8, u8),
        Ns(u8, u8),
        Dad(u8, u8),
        Garbage(Vec<u8>),
    }

    const IFACES: [&str; 3] = ["eth0", "eth1", "br0"];

    fn pool_ip(i: u8) -> IpAddr {
        // Half IPv4, half IPv6; IPv6 ones share solicited-node groups.
        if i.is_multiple_of(2) {
            v4(Ipv4Addr::new(198, 18, 0, i))
        } else {
            v6(Ipv6Addr::new(
                0xfd00,
                u16::from(i % 3),
                0,
                0,
                0,
                0,
                0,
                u16::from(i % 4),
            ))
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec((0u8..8, 0u8..3), 0..6).prop_map(Op::Set),
            (0u16..3000).prop_map(Op::Tick),
            (0u8..8, 0u8..3).prop_map(|(i, f)| Op::Arp(i, f)),
            (0u8..8, 0u8..3).prop_map(|(i, f)| Op::Ns(i, f)),
            (0u8..8, 0u8..3).prop_map(|(i, f)| Op::Dad(i, f)),
            proptest::collection::vec(any::<u8>(), 0..90).prop_map(Op::Garbage),
        ]
    }

    proptest! {
        #[test]
        fn answers_exactly_for_desired(ops in proptest::collection::vec(op(), 1..40)) {
            let t0 = Instant::now();
            let mut now = t0;
            let mut a = Announcer::new();
            let mut model: BTreeSet<(IpAddr, &str)> = BTreeSet::new();
            let mut joined: BTreeSet<(String, Ipv6Addr)> = BTreeSet::new();
            for op in ops {
                let dad = matches!(op, Op::Dad(..));
                let actions: Vec<Action> = match op {
                    Op::Set(pairs) => {
                        model = pairs.iter().map(|(i, f)| (pool_ip(*i), IFACES[usize::from(*f)])).collect();
                        let mut d = DesiredAnnouncements::new();
                        for (ip, iface) in &model {
                            d.entry(*ip).or_default().insert((*iface).to_owned());
                        }
                        let actions = a.set_desired(&d, now);
                        prop_assert_eq!(a.announcing(), d);
                        actions
                    }
                    Op::Tick(ms) => {
                        now += Duration::from_millis(u64::from(ms));
                        let actions = a.on_tick(now);
                        if let Some(due) = a.next_deadline() {
                            prop_assert!(due > now);
                        }
                        actions
                    }
                    Op::Arp(i, f) | Op::Ns(i, f) | Op::Dad(i, f) => {
                        let ip = pool_ip(i);
                        let iface = IFACES[usize::from(f)];
                        let bytes = match ip {
                            IpAddr::V4(t) => frame::arp_request(CLIENT_MAC, CLIENT4, t),
                            IpAddr::V6(t) if dad => frame::neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, t),
                            IpAddr::V6(t) => frame::neighbor_solicitation(CLIENT_MAC, CLIENT6, t),
                        };
                        let target_owned = match frame::parse(&bytes) {
                            Ok(Inbound::ArpRequest { target_ip, .. }) => model.contains(&(v4(target_ip), iface)),
                            Ok(Inbound::NeighborSolicitation { target, .. }) => model.contains(&(v6(target), iface)),
                            Ok(_) | Err(_) => false,
                        };
                        let action = a.on_frame(iface, &bytes);
                        prop_assert_eq!(action.is_some(), target_owned);
                        action.into_iter().collect()
                    }
                    Op::Garbage(bytes) => {
                        // Random bytes can only be answered if they happen to
                        // form a valid request for an owned IP.
                        let action = a.on_frame("eth0", &bytes);
                        if action.is_some() {
                            let owned = match frame::parse(&bytes) {
                                Ok(Inbound::ArpRequest { target_ip, .. }) => model.contains(&(v4(target_ip), "eth0")),
                                Ok(Inbound::NeighborSolicitation { target, .. }) => model.contains(&(v6(target), "eth0")),
                                Ok(_) | Err(_) => false,
                            };
                            prop_assert!(owned);
                        }
                        action.into_iter().collect()
                    }
                };
                for action in &actions {
                    match action {
                        Action::JoinGroup { iface, group } => {
                            prop_assert!(joined.insert((iface.clone(), *group)), "double join");
                        }
                        Action::LeaveGroup { iface, group } => {
                            prop_assert!(joined.remove(&(iface.clone(), *group)), "leave without join");
                        }
                        Action::SendGratuitous { iface, ip } => {
                            prop_assert!(model.contains(&(*ip, iface.as_str())));
                        }
                        Action::Reply { iface, .. } => {
                            prop_assert!(IFACES.contains(&iface.as_str()));
                        }
                        Action::Probe { .. } => prop_assert!(false, "the announcer never probes"),
                    }
                    for frame in action.frames(OUR_MAC) {
                        prop_assert!(!frame.is_empty());
                    }
                }
                let needed: BTreeSet<(String, Ipv6Addr)> = model
                    .iter()
                    .filter_map(|(ip, iface)| match ip {
                        IpAddr::V6(v6) => Some(((*iface).to_owned(), frame::solicited_node_multicast(*v6))),
                        IpAddr::V4(_) => None,
                    })
                    .collect();
                prop_assert_eq!(&joined, &needed);
            }
        }
    }
}
