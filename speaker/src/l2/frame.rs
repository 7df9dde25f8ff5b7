//! Ethernet frames for L2 announcements: parse the ARP requests and Neighbor
//! Solicitations we may have to answer, and build replies and unsolicited
//! announcements. Pure: no I/O, no panics on any input.
//!
//! Only untagged Ethernet II frames are handled: a socket bound to a VLAN's
//! parent must not answer for that VLAN, so in-band 802.1Q/802.1ad tags are
//! dropped here (and tags stripped by the NIC are dropped by the socket's BPF
//! filter, see `socket.rs`).
//!
//! DAD probes (Neighbor Solicitations from `::`) are reported as ordinary
//! solicitations with `src_ip == ::`; the announcer defends an owned VIP by
//! answering them the RFC 4861 §7.2.4 way: a Neighbor Advertisement to
//! all-nodes `ff02::1` without the Solicited flag (never a unicast reply to
//! the unspecified address).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNdpOptionPacket, MutableNeighborAdvertPacket, MutableNeighborSolicitPacket,
    NdpOptionTypes, NeighborAdvertFlags, NeighborSolicitPacket,
};
use pnet_packet::icmpv6::{Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::util::ipv6_checksum;

const ETHERNET_HEADER_LEN: usize = 14;
const ARP_LEN: usize = 28;
const IPV6_HEADER_LEN: usize = 40;
/// ICMPv6 type, code, checksum, reserved/flags and target address.
const ND_HEADER_LEN: usize = 24;
/// One NDP option for an Ethernet address: type, length (in 8-octet units), MAC.
const LLADDR_OPTION_LEN: usize = 8;
const NA_LEN: usize = ND_HEADER_LEN + LLADDR_OPTION_LEN;
/// RFC 4861 §7.1.1: a hop limit below 255 means the packet crossed a router.
const ND_HOP_LIMIT: u8 = 255;

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Group (multicast or broadcast) addresses have the I/G bit set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error from parsing a textual MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: want six hex octets separated by ':'")]
pub struct ParseMacError(String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_owned());
        let mut octets = [0u8; 6];
        let mut parts = s.trim().split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(octets))
    }
}

/// A well-formed frame that may need an answer, or that claims an address (for conflicts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// ARP request (op 1) for IPv4 over Ethernet. `sender_ip` is 0.0.0.0 for
    /// an RFC 5227 probe and equals `target_ip` for an announcement.
    ArpRequest {
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    /// Neighbor Solicitation that passed RFC 4861 §7.1.1 validation.
    /// `src_ip` is `::` for a DAD probe (then `source_lladdr` is `None`).
    NeighborSolicitation {
        /// Ethernet source address.
        src_mac: MacAddr,
        src_ip: Ipv6Addr,
        target: Ipv6Addr,
        /// Source link-layer address option, if present.
        source_lladdr: Option<MacAddr>,
    },
    /// ARP reply (op 2): `sender_mac` says it has `sender_ip`.
    ArpReply {
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
    },
    /// Neighbor Advertisement (RFC 4861 §7.1.2 valid): someone has `target`, at `target_lladdr`.
    NeighborAdvertisement {
        src_mac: MacAddr,
        target: Ipv6Addr,
        target_lladdr: Option<MacAddr>,
    },
}

/// Why a frame was not turned into an [`Inbound`].
///
/// Some reasons are merely "not for us" (ignored); the others mean the frame
/// is invalid (malformed). Both are counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    // Ignored: well-formed, but nothing to answer.
    /// Carries an in-band 802.1Q/802.1ad tag.
    VlanTagged,
    /// Neither ARP nor IPv6.
    OtherEtherType,
    /// ARP, but neither a request nor a reply.
    ArpNotRequest,
    /// IPv6, but the next header is not ICMPv6.
    NotIcmpv6,
    /// ICMPv6, but neither a Neighbor Solicitation nor an Advertisement.
    NotNeighborSolicitation,

    // Malformed.
    /// Shorter than an Ethernet header.
    TruncatedEthernet,
    /// Ethernet source is a group address.
    MulticastEthernetSource,
    /// Shorter than an Ethernet/IPv4 ARP packet.
    TruncatedArp,
    /// Hardware type, protocol type or address lengths are not Ethernet/IPv4.
    ArpUnsupportedFormat,
    /// Sender MAC is a group address, or sender IP multicast/broadcast.
    ArpBadSender,
    /// Target IP is multicast or broadcast.
    ArpBadTarget,
    /// Shorter than an IPv6 header.
    TruncatedIpv6,
    /// IP version field is not 6.
    Ipv6BadVersion,
    /// Payload length exceeds the bytes received.
    Ipv6PayloadTruncated,
    /// IPv6 source is multicast (never valid as a source).
    Ipv6MulticastSource,
    /// ICMPv6 length below the 24 octets of a Neighbor Solicitation.
    NsTooShort,
    /// ICMPv6 code is not 0.
    NsBadCode,
    /// Hop limit is not 255: the solicitation crossed a router.
    NsBadHopLimit,
    /// ICMPv6 checksum does not verify.
    NsBadChecksum,
    /// Target address is multicast.
    NsMulticastTarget,
    /// An option has length 0 or runs past the end of the message.
    NsBadOption,
    /// Source link-layer option is not one Ethernet address, or is a group address.
    NsBadSourceLinkLayerOption,
    /// DAD probe (source `::`) not sent to a solicited-node multicast address.
    DadNotToSolicitedNode,
    /// DAD probe (source `::`) carrying a source link-layer option.
    DadWithSourceLinkLayerOption,
}

impl DropReason {
    /// True for invalid frames, false for valid frames we have no business with.
    pub fn is_malformed(self) -> bool {
        !matches!(
            self,
            Self::VlanTagged
                | Self::OtherEtherType
                | Self::ArpNotRequest
                | Self::NotIcmpv6
                | Self::NotNeighborSolicitation
        )
    }

    /// Stable snake_case name, e.g. for a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VlanTagged => "vlan_tagged",
            Self::OtherEtherType => "other_ethertype",
            Self::ArpNotRequest => "arp_not_request",
            Self::NotIcmpv6 => "not_icmpv6",
            Self::NotNeighborSolicitation => "not_neighbor_solicitation",
            Self::TruncatedEthernet => "truncated_ethernet",
            Self::MulticastEthernetSource => "multicast_ethernet_source",
            Self::TruncatedArp => "truncated_arp",
            Self::ArpUnsupportedFormat => "arp_unsupported_format",
            Self::ArpBadSender => "arp_bad_sender",
            Self::ArpBadTarget => "arp_bad_target",
            Self::TruncatedIpv6 => "truncated_ipv6",
            Self::Ipv6BadVersion => "ipv6_bad_version",
            Self::Ipv6PayloadTruncated => "ipv6_payload_truncated",
            Self::Ipv6MulticastSource => "ipv6_multicast_source",
            Self::NsTooShort => "ns_too_short",
            Self::NsBadCode => "ns_bad_code",
            Self::NsBadHopLimit => "ns_bad_hop_limit",
            Self::NsBadChecksum => "ns_bad_checksum",
            Self::NsMulticastTarget => "ns_multicast_target",
            Self::NsBadOption => "ns_bad_option",
            Self::NsBadSourceLinkLayerOption => "ns_bad_source_link_layer_option",
            Self::DadNotToSolicitedNode => "dad_not_to_solicited_node",
            Self::DadWithSourceLinkLayerOption => "dad_with_source_link_layer_option",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses one received Ethernet frame (without FCS). Trailing bytes beyond
/// the ARP packet or IPv6 payload (Ethernet padding) are ignored.
pub fn parse(frame: &[u8]) -> Result<Inbound, DropReason> {
    let eth = EthernetPacket::new(frame).ok_or(DropReason::TruncatedEthernet)?;
    let ethertype = eth.get_ethertype();
    if ethertype == EtherTypes::Vlan
        || ethertype == EtherTypes::QinQ
        || ethertype == EtherTypes::PBridge
    {
        return Err(DropReason::VlanTagged);
    }
    if ethertype != EtherTypes::Arp && ethertype != EtherTypes::Ipv6 {
        return Err(DropReason::OtherEtherType);
    }
    let src_mac = MacAddr(eth.get_source().octets());
    if src_mac.is_multicast() {
        return Err(DropReason::MulticastEthernetSource);
    }
    let payload = frame.get(ETHERNET_HEADER_LEN..).unwrap_or_default();
    if ethertype == EtherTypes::Arp {
        parse_arp(payload)
    } else {
        parse_ipv6(src_mac, payload)
    }
}

fn parse_arp(payload: &[u8]) -> Result<Inbound, DropReason> {
    let arp = ArpPacket::new(payload).ok_or(DropReason::TruncatedArp)?;
    if arp.get_hardware_type() != ArpHardwareTypes::Ethernet
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || arp.get_hw_addr_len() != 6
        || arp.get_proto_addr_len() != 4
    {
        return Err(DropReason::ArpUnsupportedFormat);
    }
    let op = arp.get_operation();
    if op != ArpOperations::Request && op != ArpOperations::Reply {
        return Err(DropReason::ArpNotRequest);
    }
    let sender_mac = MacAddr(arp.get_sender_hw_addr().octets());
    let sender_ip = arp.get_sender_proto_addr();
    let target_ip = arp.get_target_proto_addr();
    // Answering would mean unicasting to a group address or for a group IP.
    if sender_mac.is_multicast() || sender_ip.is_multicast() || sender_ip.is_broadcast() {
        return Err(DropReason::ArpBadSender);
    }
    if target_ip.is_multicast() || target_ip.is_broadcast() {
        return Err(DropReason::ArpBadTarget);
    }
    if op == ArpOperations::Reply {
        return Ok(Inbound::ArpReply {
            sender_mac,
            sender_ip,
        });
    }
    Ok(Inbound::ArpRequest {
        sender_mac,
        sender_ip,
        target_ip,
    })
}

fn parse_ipv6(src_mac: MacAddr, payload: &[u8]) -> Result<Inbound, DropReason> {
    let ip = Ipv6Packet::new(payload).ok_or(DropReason::TruncatedIpv6)?;
    if ip.get_version() != 6 {
        return Err(DropReason::Ipv6BadVersion);
    }
    let end = IPV6_HEADER_LEN + usize::from(ip.get_payload_length());
    let body = payload
        .get(IPV6_HEADER_LEN..end)
        .ok_or(DropReason::Ipv6PayloadTruncated)?;
    // Extension headers are not followed: real solicitations carry none, and
    // the BPF filter only passes next header 58 anyway.
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        return Err(DropReason::NotIcmpv6);
    }
    let src_ip = ip.get_source();
    let dst_ip = ip.get_destination();
    if src_ip.is_multicast() {
        return Err(DropReason::Ipv6MulticastSource);
    }
    let icmp = Icmpv6Packet::new(body).ok_or(DropReason::NsTooShort)?;
    let advert = icmp.get_icmpv6_type() == Icmpv6Types::NeighborAdvert;
    if icmp.get_icmpv6_type() != Icmpv6Types::NeighborSolicit && !advert {
        return Err(DropReason::NotNeighborSolicitation);
    }
    // RFC 4861 §7.1.1 (NS) and §7.1.2 (NA) validity checks, in its order (Ns* reasons: both).
    if ip.get_hop_limit() != ND_HOP_LIMIT {
        return Err(DropReason::NsBadHopLimit);
    }
    // Summing over the checksum field too must give zero; this accepts both
    // one's-complement zeros.
    if ipv6_checksum(
        body,
        usize::MAX,
        &[],
        &src_ip,
        &dst_ip,
        IpNextHeaderProtocols::Icmpv6,
    ) != 0
    {
        return Err(DropReason::NsBadChecksum);
    }
    if icmp.get_icmpv6_code() != Icmpv6Code(0) {
        return Err(DropReason::NsBadCode);
    }
    let ns = NeighborSolicitPacket::new(body)
        .filter(|_| body.len() >= ND_HEADER_LEN)
        .ok_or(DropReason::NsTooShort)?;
    let target = ns.get_target_addr();
    if target.is_multicast() {
        return Err(DropReason::NsMulticastTarget);
    }
    let options = body.get(ND_HEADER_LEN..).unwrap_or_default();
    if advert {
        return Ok(Inbound::NeighborAdvertisement {
            src_mac,
            target,
            target_lladdr: lladdr_option_of(NdpOptionTypes::TargetLLAddr.0, options)?,
        });
    }
    let source_lladdr = lladdr_option_of(NdpOptionTypes::SourceLLAddr.0, options)?;
    if src_ip.is_unspecified() {
        if !is_solicited_node_multicast(dst_ip) {
            return Err(DropReason::DadNotToSolicitedNode);
        }
        if source_lladdr.is_some() {
            return Err(DropReason::DadWithSourceLinkLayerOption);
        }
    }
    Ok(Inbound::NeighborSolicitation {
        src_mac,
        src_ip,
        target,
        source_lladdr,
    })
}

/// The link-layer address option of type `wanted`. Walks NDP options by hand: pnet's option
/// iterator computes `length * 8` in u8 and would overflow on hostile lengths.
fn lladdr_option_of(wanted: u8, mut options: &[u8]) -> Result<Option<MacAddr>, DropReason> {
    let mut found = None;
    while !options.is_empty() {
        let (&kind, rest) = options.split_first().ok_or(DropReason::NsBadOption)?;
        let &units = rest.first().ok_or(DropReason::NsBadOption)?;
        let len = usize::from(units) * 8;
        if len == 0 || len > options.len() {
            return Err(DropReason::NsBadOption);
        }
        let (option, rest) = options.split_at(len);
        if kind == wanted {
            let mac = option
                .get(2..)
                .and_then(|data| <[u8; 6]>::try_from(data).ok())
                .map(MacAddr)
                .ok_or(DropReason::NsBadSourceLinkLayerOption)?;
            if mac.is_multicast() {
                return Err(DropReason::NsBadSourceLinkLayerOption);
            }
            // Duplicates: keep the first, as Linux does.
            found.get_or_insert(mac);
        }
        // Unknown options are skipped (RFC 4861 §4.6).
        options = rest;
    }
    Ok(found)
}

/// `ff02::1:ffXX:XXXX`: the group a Neighbor Solicitation for `ip` is sent to.
pub fn solicited_node_multicast(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// True for any address in `ff02::1:ff00:0/104`.
pub fn is_solicited_node_multicast(ip: Ipv6Addr) -> bool {
    ip.octets()[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// Ethernet address of an IPv6 multicast group (RFC 2464 §7): `33:33` and
/// the group's low 32 bits.
pub fn ipv6_multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Where a Neighbor Advertisement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NaDestination {
    /// Answer to a solicitation: unicast, Solicited and Override flags.
    Solicitor { mac: MacAddr, ip: Ipv6Addr },
    /// To all-nodes with Override only: an unsolicited announcement, or the
    /// answer to a DAD probe (RFC 4861 §7.2.4).
    AllNodes,
}

/// ARP reply from `our_mac`/`vip` to the requester.
pub fn arp_reply(our_mac: MacAddr, vip: Ipv4Addr, to_mac: MacAddr, to_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        to_mac,
        ArpFields {
            reply: true,
            sender_mac: our_mac,
            sender_ip: vip,
            target_mac: to_mac,
            target_ip: to_ip,
        },
    )
}

/// Broadcast ARP request from `sender_mac`/`sender_ip` for `target_ip`;
/// target MAC zero as RFC 5227 asks. With `sender_ip == target_ip` it is an
/// announcement, with `sender_ip` 0.0.0.0 a probe.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        ArpFields {
            reply: false,
            sender_mac,
            sender_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        },
    )
}

/// Gratuitous ARP request (RFC 5227 announcement): sender = target = `vip`.
pub fn gratuitous_arp_request(our_mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    arp_request(our_mac, vip, vip)
}

/// Gratuitous ARP reply, broadcast, sender = target = `vip`. Sent alongside
/// the request because some stacks only update their cache from replies.
/// Target MAC is broadcast, matching the Ethernet destination.
pub fn gratuitous_arp_reply(our_mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        ArpFields {
            reply: true,
            sender_mac: our_mac,
            sender_ip: vip,
            target_mac: MacAddr::BROADCAST,
            target_ip: vip,
        },
    )
}

struct ArpFields {
    reply: bool,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
}

fn arp_frame(dst: MacAddr, f: ArpFields) -> Vec<u8> {
    build(ETHERNET_HEADER_LEN + ARP_LEN, |buf| {
        let (head, body) = buf.split_at_mut(ETHERNET_HEADER_LEN);
        let mut eth = MutableEthernetPacket::new(head)?;
        eth.set_destination(dst.0.into());
        eth.set_source(f.sender_mac.0.into());
        eth.set_ethertype(EtherTypes::Arp);
        let mut arp = MutableArpPacket::new(body)?;
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(if f.reply {
            ArpOperations::Reply
        } else {
            ArpOperations::Request
        });
        arp.set_sender_hw_addr(f.sender_mac.0.into());
        arp.set_sender_proto_addr(f.sender_ip);
        arp.set_target_hw_addr(f.target_mac.0.into());
        arp.set_target_proto_addr(f.target_ip);
        Some(())
    })
}

/// Neighbor Advertisement for `vip` with our MAC in a target link-layer
/// option; source address is the VIP itself (as Linux does for its own
/// addresses), hop limit 255.
pub fn neighbor_advertisement(our_mac: MacAddr, vip: Ipv6Addr, to: NaDestination) -> Vec<u8> {
    let (dst_mac, dst_ip, flags) = match to {
        NaDestination::Solicitor { mac, ip } => (
            mac,
            ip,
            NeighborAdvertFlags::Solicited | NeighborAdvertFlags::Override,
        ),
        NaDestination::AllNodes => (
            ipv6_multicast_mac(ALL_NODES),
            ALL_NODES,
            NeighborAdvertFlags::Override,
        ),
    };
    ipv6_frame(our_mac, dst_mac, vip, dst_ip, NA_LEN, |icmp| {
        let mut na = MutableNeighborAdvertPacket::new(icmp)?;
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        na.set_flags(flags);
        na.set_target_addr(vip);
        lladdr_option(
            icmp.get_mut(ND_HEADER_LEN..)?,
            NdpOptionTypes::TargetLLAddr.0,
            our_mac,
        )
    })
}

/// Unsolicited Neighbor Advertisement (Override, to `ff02::1`): tells every
/// neighbour that `vip` moved to `our_mac`.
pub fn unsolicited_neighbor_advertisement(our_mac: MacAddr, vip: Ipv6Addr) -> Vec<u8> {
    neighbor_advertisement(our_mac, vip, NaDestination::AllNodes)
}

/// Neighbor Solicitation for `target` to its solicited-node group. With
/// `src_ip == ::` it is a DAD probe (no source link-layer option, per
/// RFC 4861 §4.3); otherwise it carries `src_mac` as that option.
/// Used by tests and fuzz seeds, and for probing an address before use.
pub fn neighbor_solicitation(src_mac: MacAddr, src_ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node_multicast(target);
    let dad = src_ip.is_unspecified();
    let icmp_len = if dad { ND_HEADER_LEN } else { NA_LEN };
    ipv6_frame(
        src_mac,
        ipv6_multicast_mac(group),
        src_ip,
        group,
        icmp_len,
        |icmp| {
            let mut ns = MutableNeighborSolicitPacket::new(icmp)?;
            ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
            ns.set_icmpv6_code(Icmpv6Code(0));
            ns.set_target_addr(target);
            if dad {
                return Some(());
            }
            lladdr_option(
                icmp.get_mut(ND_HEADER_LEN..)?,
                NdpOptionTypes::SourceLLAddr.0,
                src_mac,
            )
        },
    )
}

fn lladdr_option(buf: &mut [u8], kind: u8, mac: MacAddr) -> Option<()> {
    let mut opt = MutableNdpOptionPacket::new(buf)?;
    opt.set_option_type(pnet_packet::icmpv6::ndp::NdpOptionType(kind));
    opt.set_length(1);
    opt.set_data(&mac.0);
    Some(())
}

/// Ethernet + IPv6 (hop limit 255, next header ICMPv6) around an ICMPv6
/// message of `icmp_len` bytes written by `fill`; then sets its checksum.
fn ipv6_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    icmp_len: usize,
    fill: impl FnOnce(&mut [u8]) -> Option<()>,
) -> Vec<u8> {
    build(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + icmp_len, |buf| {
        let (head, rest) = buf.split_at_mut(ETHERNET_HEADER_LEN);
        let mut eth = MutableEthernetPacket::new(head)?;
        eth.set_destination(dst_mac.0.into());
        eth.set_source(src_mac.0.into());
        eth.set_ethertype(EtherTypes::Ipv6);
        let (ip_head, icmp) = rest.split_at_mut(IPV6_HEADER_LEN);
        let mut ip = MutableIpv6Packet::new(ip_head)?;
        ip.set_version(6);
        ip.set_payload_length(u16::try_from(icmp_len).ok()?);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(ND_HOP_LIMIT);
        ip.set_source(src_ip);
        ip.set_destination(dst_ip);
        fill(icmp)?;
        // Word 1 is the checksum field itself, skipped while summing.
        let sum = ipv6_checksum(
            icmp,
            1,
            &[],
            &src_ip,
            &dst_ip,
            IpNextHeaderProtocols::Icmpv6,
        );
        icmp.get_mut(2..4)?.copy_from_slice(&sum.to_be_bytes());
        Some(())
    })
}

/// Runs `fill` over a zeroed buffer of `len` bytes. Buffers are sized from
/// constants, so `fill` cannot fail; if it ever did, an empty frame (which
/// the shell refuses to send) beats a panic.
fn build(len: usize, fill: impl FnOnce(&mut [u8]) -> Option<()>) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    match fill(&mut buf) {
        Some(()) => buf,
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet_packet::icmpv6::checksum as pnet_icmpv6_checksum;
    use pnet_packet::icmpv6::ndp::NeighborAdvertPacket;
    use proptest::prelude::*;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
    const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 50);
    const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 2);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0x12, 0x3450);
    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 2);

    fn eth(frame: &[u8]) -> EthernetPacket<'_> {
        EthernetPacket::new(frame).expect("ethernet header")
    }

    fn arp(frame: &[u8]) -> ArpPacket<'_> {
        ArpPacket::new(&frame[ETHERNET_HEADER_LEN..]).expect("arp packet")
    }

    fn ipv6(frame: &[u8]) -> Ipv6Packet<'_> {
        Ipv6Packet::new(&frame[ETHERNET_HEADER_LEN..]).expect("ipv6 header")
    }

    fn icmp_body(frame: &[u8]) -> &[u8] {
        &frame[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN..]
    }

    /// Recomputes the ICMPv6 checksum of `frame` after an edit.
    fn fix_checksum(frame: &mut [u8]) {
        let ip = ipv6(frame);
        let (src, dst) = (ip.get_source(), ip.get_destination());
        let body = &mut frame[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN..];
        let sum = ipv6_checksum(body, 1, &[], &src, &dst, IpNextHeaderProtocols::Icmpv6);
        body[2..4].copy_from_slice(&sum.to_be_bytes());
    }

    fn set_payload_length(frame: &mut [u8], len: u16) {
        frame[ETHERNET_HEADER_LEN + 4..ETHERNET_HEADER_LEN + 6].copy_from_slice(&len.to_be_bytes());
    }

    fn ns() -> Vec<u8> {
        neighbor_solicitation(CLIENT_MAC, CLIENT6, VIP6)
    }

    #[test]
    fn mac_display_and_parse_round_trip() {
        let mac = MacAddr([0x02, 0xab, 0, 0x10, 0xff, 0x7]);
        assert_eq!(mac.to_string(), "02:ab:00:10:ff:07");
        assert_eq!("02:ab:00:10:ff:07".parse::<MacAddr>(), Ok(mac));
        assert_eq!("02:AB:0:10:FF:7\n".parse::<MacAddr>(), Ok(mac));
        for bad in [
            "",
            "02:ab:00:10:ff",
            "02:ab:00:10:ff:07:00",
            "02:ab:00:10:ff:xyz",
            "2:::::",
            "02-ab-00-10-ff-07",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!OUR_MAC.is_multicast());
        assert!(MacAddr::ZERO.is_zero());
    }

    #[test]
    fn arp_reply_fields() {
        let frame = arp_reply(OUR_MAC, VIP4, CLIENT_MAC, CLIENT4);
        assert_eq!(frame.len(), 42);
        let e = eth(&frame);
        assert_eq!(e.get_destination().octets(), CLIENT_MAC.0);
        assert_eq!(e.get_source().octets(), OUR_MAC.0);
        assert_eq!(e.get_ethertype(), EtherTypes::Arp);
        let a = arp(&frame);
        assert_eq!(a.get_hardware_type(), ArpHardwareTypes::Ethernet);
        assert_eq!(a.get_protocol_type(), EtherTypes::Ipv4);
        assert_eq!(a.get_hw_addr_len(), 6);
        assert_eq!(a.get_proto_addr_len(), 4);
        assert_eq!(a.get_operation(), ArpOperations::Reply);
        assert_eq!(a.get_sender_hw_addr().octets(), OUR_MAC.0);
        assert_eq!(a.get_sender_proto_addr(), VIP4);
        assert_eq!(a.get_target_hw_addr().octets(), CLIENT_MAC.0);
        assert_eq!(a.get_target_proto_addr(), CLIENT4);
        // A reply is a claim (read for conflicts), never something we answer.
        assert_eq!(
            parse(&frame),
            Ok(Inbound::ArpReply {
                sender_mac: OUR_MAC,
                sender_ip: VIP4
            })
        );
    }

    #[test]
    fn gratuitous_arp_request_fields() {
        let frame = gratuitous_arp_request(OUR_MAC, VIP4);
        assert_eq!(frame.len(), 42);
        let e = eth(&frame);
        assert_eq!(e.get_destination().octets(), MacAddr::BROADCAST.0);
        assert_eq!(e.get_source().octets(), OUR_MAC.0);
        let a = arp(&frame);
        assert_eq!(a.get_operation(), ArpOperations::Request);
        assert_eq!(a.get_sender_hw_addr().octets(), OUR_MAC.0);
        assert_eq!(a.get_sender_proto_addr(), VIP4);
        assert_eq!(a.get_target_hw_addr().octets(), MacAddr::ZERO.0);
        assert_eq!(a.get_target_proto_addr(), VIP4);
        assert_eq!(
            parse(&frame),
            Ok(Inbound::ArpRequest {
                sender_mac: OUR_MAC,
                sender_ip: VIP4,
                target_ip: VIP4
            })
        );
    }

    #[test]
    fn gratuitous_arp_reply_fields() {
        let frame = gratuitous_arp_reply(OUR_MAC, VIP4);
        assert_eq!(frame.len(), 42);
        let e = eth(&frame);
        assert_eq!(e.get_destination().octets(), MacAddr::BROADCAST.0);
        assert_eq!(e.get_source().octets(), OUR_MAC.0);
        let a = arp(&frame);
        assert_eq!(a.get_operation(), ArpOperations::Reply);
        assert_eq!(a.get_sender_hw_addr().octets(), OUR_MAC.0);
        assert_eq!(a.get_sender_proto_addr(), VIP4);
        assert_eq!(a.get_target_hw_addr().octets(), MacAddr::BROADCAST.0);
        assert_eq!(a.get_target_proto_addr(), VIP4);
    }

    #[test]
    fn arp_request_round_trip_including_probe_and_padding() {
        for sender_ip in [CLIENT4, Ipv4Addr::UNSPECIFIED] {
            let mut frame = arp_request(CLIENT_MAC, sender_ip, VIP4);
            let want = Ok(Inbound::ArpRequest {
                sender_mac: CLIENT_MAC,
                sender_ip,
                target_ip: VIP4,
            });
            assert_eq!(parse(&frame), want);
            // Minimum-size Ethernet frames arrive padded to 60 bytes.
            frame.resize(60, 0);
            assert_eq!(parse(&frame), want);
        }
    }

    fn check_na(frame: &[u8], dst_mac: MacAddr, dst_ip: Ipv6Addr, flags: u8) {
        assert_eq!(frame.len(), 86);
        let e = eth(frame);
        assert_eq!(e.get_destination().octets(), dst_mac.0);
        assert_eq!(e.get_source().octets(), OUR_MAC.0);
        assert_eq!(e.get_ethertype(), EtherTypes::Ipv6);
        let ip = ipv6(frame);
        assert_eq!(ip.get_version(), 6);
        assert_eq!(ip.get_traffic_class(), 0);
        assert_eq!(ip.get_flow_label(), 0);
        assert_eq!(ip.get_payload_length(), 32);
        assert_eq!(ip.get_next_header(), IpNextHeaderProtocols::Icmpv6);
        assert_eq!(ip.get_hop_limit(), 255);
        assert_eq!(ip.get_source(), VIP6);
        assert_eq!(ip.get_destination(), dst_ip);
        let body = icmp_body(frame);
        let icmp = Icmpv6Packet::new(body).expect("icmpv6");
        assert_eq!(icmp.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
        assert_eq!(icmp.get_icmpv6_code(), Icmpv6Code(0));
        assert_eq!(
            icmp.get_checksum(),
            pnet_icmpv6_checksum(&icmp, &VIP6, &dst_ip),
            "checksum"
        );
        let na = NeighborAdvertPacket::new(body).expect("na");
        assert_eq!(na.get_flags(), flags);
        assert_eq!(na.get_reserved(), 0);
        assert_eq!(na.get_target_addr(), VIP6);
        // Option bytes checked raw: type 2 (target lladdr), length 1, MAC.
        assert_eq!(&body[24..26], &[2, 1]);
        assert_eq!(&body[26..32], &OUR_MAC.0);
    }

    /// Advertisements are claims of their target, read for conflict detection; the claimant is
    /// the target link-layer option, else the Ethernet source; broken ones are dropped.
    #[test]
    fn neighbor_advertisements_parse_as_claims() {
        let want = Ok(Inbound::NeighborAdvertisement {
            src_mac: OUR_MAC,
            target: VIP6,
            target_lladdr: Some(OUR_MAC),
        });
        assert_eq!(
            parse(&unsolicited_neighbor_advertisement(OUR_MAC, VIP6)),
            want
        );
        let solicited = NaDestination::Solicitor {
            mac: CLIENT_MAC,
            ip: CLIENT6,
        };
        assert_eq!(
            parse(&neighbor_advertisement(OUR_MAC, VIP6, solicited)),
            want
        );
        // Without the option (IPv6 payload cut to the 24-octet header).
        let mut frame = unsolicited_neighbor_advertisement(OUR_MAC, VIP6);
        frame.truncate(frame.len() - 8);
        frame[ETHERNET_HEADER_LEN + 5] = 24;
        fix_checksum(&mut frame);
        assert_eq!(
            parse(&frame),
            Ok(Inbound::NeighborAdvertisement {
                src_mac: OUR_MAC,
                target: VIP6,
                target_lladdr: None,
            })
        );
        let mut frame = unsolicited_neighbor_advertisement(OUR_MAC, VIP6);
        frame[ETHERNET_HEADER_LEN + 7] = 64; // hop limit: crossed a router
        assert_eq!(parse(&frame), Err(DropReason::NsBadHopLimit));
        let mut frame = unsolicited_neighbor_advertisement(OUR_MAC, VIP6);
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert_eq!(parse(&frame), Err(DropReason::NsBadChecksum));
    }

    #[test]
    fn neighbor_advertisement_to_solicitor() {
        let frame = neighbor_advertisement(
            OUR_MAC,
            VIP6,
            NaDestination::Solicitor {
                mac: CLIENT_MAC,
                ip: CLIENT6,
            },
        );
        check_na(
            &frame,
            CLIENT_MAC,
            CLIENT6,
            NeighborAdvertFlags::Solicited | NeighborAdvertFlags::Override,
        );
        // A claim of the VIP (read for conflicts), never answered.
        assert!(matches!(
            parse(&frame),
            Ok(Inbound::NeighborAdvertisement { .. })
        ));
    }

    #[test]
    fn neighbor_advertisement_to_all_nodes() {
        let frame = neighbor_advertisement(OUR_MAC, VIP6, NaDestination::AllNodes);
        let all_nodes_mac = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        check_na(
            &frame,
            all_nodes_mac,
            ALL_NODES,
            NeighborAdvertFlags::Override,
        );
        assert_eq!(unsolicited_neighbor_advertisement(OUR_MAC, VIP6), frame);
    }

    #[test]
    fn neighbor_solicitation_round_trip() {
        let frame = ns();
        let ip = ipv6(&frame);
        assert_eq!(
            ip.get_destination(),
            "ff02::1:ff12:3450".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            eth(&frame).get_destination().octets(),
            [0x33, 0x33, 0xff, 0x12, 0x34, 0x50]
        );
        assert_eq!(
            parse(&frame),
            Ok(Inbound::NeighborSolicitation {
                src_mac: CLIENT_MAC,
                src_ip: CLIENT6,
                target: VIP6,
                source_lladdr: Some(CLIENT_MAC),
            })
        );
        // Ethernet padding after the IPv6 payload is ignored.
        let mut padded = frame.clone();
        padded.extend_from_slice(&[0xaa; 10]);
        assert_eq!(parse(&padded), parse(&frame));
    }

    #[test]
    fn dad_probe_round_trip() {
        let frame = neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6);
        assert_eq!(frame.len(), 14 + 40 + 24);
        assert_eq!(
            parse(&frame),
            Ok(Inbound::NeighborSolicitation {
                src_mac: CLIENT_MAC,
                src_ip: Ipv6Addr::UNSPECIFIED,
                target: VIP6,
                source_lladdr: None,
            })
        );
    }

    #[test]
    fn ns_without_options_is_accepted() {
        let mut frame = ns();
        frame.truncate(14 + 40 + 24);
        set_payload_length(&mut frame, 24);
        fix_checksum(&mut frame);
        assert!(matches!(
            parse(&frame),
            Ok(Inbound::NeighborSolicitation {
                source_lladdr: None,
                ..
            })
        ));
    }

    #[test]
    fn ns_unknown_options_skipped_and_first_lladdr_kept() {
        let mut frame = ns();
        // Nonce option (type 14, 8 bytes) then a second source lladdr.
        frame.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
        frame.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 9]);
        set_payload_length(&mut frame, 48);
        fix_checksum(&mut frame);
        assert!(matches!(
            parse(&frame),
            Ok(Inbound::NeighborSolicitation {
                source_lladdr: Some(CLIENT_MAC),
                ..
            })
        ));
    }

    #[test]
    fn solicited_node_helpers() {
        let ip: Ipv6Addr = "2001:db8::abcd:ef12:3456".parse().unwrap();
        let group = solicited_node_multicast(ip);
        assert_eq!(group, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        assert!(is_solicited_node_multicast(group));
        assert!(!is_solicited_node_multicast(ALL_NODES));
        assert!(!is_solicited_node_multicast(ip));
        assert_eq!(
            ipv6_multicast_mac(group).0,
            [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]
        );
        assert_eq!(ipv6_multicast_mac(ALL_NODES).0, [0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn every_truncation_is_malformed() {
        let frames = [
            arp_request(CLIENT_MAC, CLIENT4, VIP4),
            ns(),
            neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6),
        ];
        for frame in frames {
            assert!(parse(&frame).is_ok());
            for len in 0..frame.len() {
                match parse(&frame[..len]) {
                    Err(reason) => assert!(reason.is_malformed(), "len {len}: {reason}"),
                    Ok(inbound) => panic!("len {len} parsed: {inbound:?}"),
                }
            }
        }
    }

    #[test]
    fn truncation_reasons() {
        let a = arp_request(CLIENT_MAC, CLIENT4, VIP4);
        assert_eq!(parse(&a[..13]), Err(DropReason::TruncatedEthernet));
        assert_eq!(parse(&a[..41]), Err(DropReason::TruncatedArp));
        let n = ns();
        assert_eq!(parse(&n[..14 + 39]), Err(DropReason::TruncatedIpv6));
        assert_eq!(
            parse(&n[..n.len() - 1]),
            Err(DropReason::Ipv6PayloadTruncated)
        );
    }

    #[test]
    fn arp_format_fields_validated() {
        // (byte offset in frame, bad value) for htype, ptype, hlen, plen.
        for (offset, value) in [(14, 1u8), (15, 6), (16, 0x86), (18, 8), (19, 16)] {
            let mut frame = arp_request(CLIENT_MAC, CLIENT4, VIP4);
            frame[offset] = value;
            assert_eq!(
                parse(&frame),
                Err(DropReason::ArpUnsupportedFormat),
                "offset {offset}"
            );
        }
        for op in [0u8, 3, 8, 9] {
            let mut frame = arp_request(CLIENT_MAC, CLIENT4, VIP4);
            frame[21] = op;
            assert_eq!(parse(&frame), Err(DropReason::ArpNotRequest), "op {op}");
        }
    }

    #[test]
    fn arp_group_addresses_rejected() {
        let multicast_mac = MacAddr([0x01, 0, 0x5e, 0, 0, 1]);
        let mut frame = arp_request(CLIENT_MAC, CLIENT4, VIP4);
        frame[22..28].copy_from_slice(&multicast_mac.0);
        assert_eq!(parse(&frame), Err(DropReason::ArpBadSender));
        for bad in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1)] {
            let frame = arp_request(CLIENT_MAC, bad, VIP4);
            assert_eq!(parse(&frame), Err(DropReason::ArpBadSender));
            let frame = arp_request(CLIENT_MAC, CLIENT4, bad);
            assert_eq!(parse(&frame), Err(DropReason::ArpBadTarget));
        }
        let frame = arp_request(MacAddr::BROADCAST, CLIENT4, VIP4);
        assert_eq!(parse(&frame), Err(DropReason::MulticastEthernetSource));
    }

    #[test]
    fn ethertypes() {
        for (ethertype, reason) in [
            ([0x81, 0x00], DropReason::VlanTagged),
            ([0x88, 0xa8], DropReason::VlanTagged),
            ([0x91, 0x00], DropReason::VlanTagged),
            ([0x08, 0x00], DropReason::OtherEtherType),
            ([0x88, 0xcc], DropReason::OtherEtherType),
        ] {
            let mut frame = arp_request(CLIENT_MAC, CLIENT4, VIP4);
            frame[12..14].copy_from_slice(&ethertype);
            assert_eq!(parse(&frame), Err(reason));
            assert!(!reason.is_malformed());
        }
    }

    #[test]
    fn ns_header_validation() {
        let mut frame = ns();
        frame[ETHERNET_HEADER_LEN] = 0x40; // version 4
        assert_eq!(parse(&frame), Err(DropReason::Ipv6BadVersion));

        let mut frame = ns();
        frame[ETHERNET_HEADER_LEN + 6] = 17; // UDP
        assert_eq!(parse(&frame), Err(DropReason::NotIcmpv6));

        let mut frame = ns();
        frame[ETHERNET_HEADER_LEN + 8] = 0xff; // source ff..:
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::Ipv6MulticastSource));

        for hop_limit in [0u8, 1, 64, 254] {
            let mut frame = ns();
            frame[ETHERNET_HEADER_LEN + 7] = hop_limit;
            assert_eq!(parse(&frame), Err(DropReason::NsBadHopLimit));
        }

        let mut frame = ns();
        let icmp = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
        frame[icmp + 2] ^= 0x01;
        assert_eq!(parse(&frame), Err(DropReason::NsBadChecksum));
        let mut frame = ns();
        frame[icmp + 20] ^= 0x80; // any bit in the target
        assert_eq!(parse(&frame), Err(DropReason::NsBadChecksum));

        let mut frame = ns();
        frame[icmp + 1] = 1;
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::NsBadCode));

        let mut frame = ns();
        frame[icmp] = 128; // echo request
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::NotNeighborSolicitation));
    }

    #[test]
    fn ns_too_short_by_ip_length() {
        for len in [0u16, 1, 4, 8, 23] {
            let mut frame = ns();
            set_payload_length(&mut frame, len);
            frame.truncate(ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + usize::from(len));
            if len >= 4 {
                fix_checksum(&mut frame);
            }
            assert_eq!(parse(&frame), Err(DropReason::NsTooShort), "len {len}");
        }
    }

    #[test]
    fn ns_multicast_target_rejected() {
        let mut frame = ns();
        let t = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + 8;
        frame[t..t + 16].copy_from_slice(&ALL_NODES.octets());
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::NsMulticastTarget));
    }

    #[test]
    fn ns_option_validation() {
        let opt = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + ND_HEADER_LEN;
        // (option type, option length byte, expected reason)
        for (kind, units, reason) in [
            (1u8, 0u8, DropReason::NsBadOption),
            (14, 0, DropReason::NsBadOption),
            (1, 2, DropReason::NsBadOption), // claims 16 bytes, 8 present
            (1, 255, DropReason::NsBadOption),
        ] {
            let mut frame = ns();
            frame[opt] = kind;
            frame[opt + 1] = units;
            fix_checksum(&mut frame);
            assert_eq!(parse(&frame), Err(reason), "type {kind} len {units}");
        }
        // A lone trailing byte cannot hold an option header.
        let mut frame = ns();
        frame.push(0);
        set_payload_length(&mut frame, 33);
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::NsBadOption));

        // Source lladdr of two units (not one Ethernet address).
        let mut frame = ns();
        frame[opt + 1] = 2;
        frame.extend_from_slice(&[0; 8]);
        set_payload_length(&mut frame, 40);
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::NsBadSourceLinkLayerOption));

        // Source lladdr that is a group address.
        let mut frame = ns();
        frame[opt + 2] = 0x01;
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::NsBadSourceLinkLayerOption));
    }

    #[test]
    fn dad_probe_validation() {
        // DAD probe to a unicast destination.
        let mut frame = neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6);
        let dst = ETHERNET_HEADER_LEN + 24;
        frame[dst..dst + 16].copy_from_slice(&VIP6.octets());
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::DadNotToSolicitedNode));

        // DAD probe to another solicited-node group is still valid (RFC only
        // asks for "a" solicited-node address).
        let mut frame = neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6);
        frame[dst + 15] ^= 0xff;
        fix_checksum(&mut frame);
        assert!(parse(&frame).is_ok());

        // DAD probe with a source link-layer option.
        let mut frame = ns();
        let src = ETHERNET_HEADER_LEN + 8;
        frame[src..src + 16].copy_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
        fix_checksum(&mut frame);
        assert_eq!(parse(&frame), Err(DropReason::DadWithSourceLinkLayerOption));
    }

    #[test]
    fn drop_reason_names_are_unique() {
        use std::collections::BTreeSet;
        let all = [
            DropReason::VlanTagged,
            DropReason::OtherEtherType,
            DropReason::ArpNotRequest,
            DropReason::NotIcmpv6,
            DropReason::NotNeighborSolicitation,
            DropReason::TruncatedEthernet,
            DropReason::MulticastEthernetSource,
            DropReason::TruncatedArp,
            DropReason::ArpUnsupportedFormat,
            DropReason::ArpBadSender,
            DropReason::ArpBadTarget,
            DropReason::TruncatedIpv6,
            DropReason::Ipv6BadVersion,
            DropReason::Ipv6PayloadTruncated,
            DropReason::Ipv6MulticastSource,
            DropReason::NsTooShort,
            DropReason::NsBadCode,
            DropReason::NsBadHopLimit,
            DropReason::NsBadChecksum,
            DropReason::NsMulticastTarget,
            DropReason::NsBadOption,
            DropReason::NsBadSourceLinkLayerOption,
            DropReason::DadNotToSolicitedNode,
            DropReason::DadWithSourceLinkLayerOption,
        ];
        let names: BTreeSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(all.iter().filter(|r| !r.is_malformed()).count(), 5);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn arbitrary_arp_and_ipv6_payloads_never_panic(
            ipv6 in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
            frame.extend_from_slice(if ipv6 { &[0x86, 0xdd] } else { &[0x08, 0x06] });
            frame.extend_from_slice(&body);
            let _ = parse(&frame);
        }

        #[test]
        fn mutated_valid_frames_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            fix in any::<bool>(),
        ) {
            let mut frame = match which {
                0 => arp_request(CLIENT_MAC, CLIENT4, VIP4),
                1 => ns(),
                _ => neighbor_solicitation(CLIENT_MAC, Ipv6Addr::UNSPECIFIED, VIP6),
            };
            for (index, byte) in edits {
                let i = index.index(frame.len());
                frame[i] = byte;
            }
            // Re-fixing the checksum lets mutations reach the later checks.
            if fix && which > 0 {
                fix_checksum(&mut frame);
            }
            let _ = parse(&frame);
        }

        #[test]
        fn built_frames_parse_back(
            mac in any::<[u8; 6]>(),
            v4 in any::<[u8; 4]>(),
            v6 in any::<[u8; 16]>(),
        ) {
            let mac = MacAddr([mac[0] & 0xfe, mac[1], mac[2], mac[3], mac[4], mac[5]]);
            let v4 = Ipv4Addr::from(v4);
            let v6 = Ipv6Addr::from(v6);
            prop_assume!(!v4.is_multicast() && !v4.is_broadcast() && !v6.is_multicast());
            prop_assert_eq!(
                parse(&gratuitous_arp_request(mac, v4)),
                Ok(Inbound::ArpRequest { sender_mac: mac, sender_ip: v4, target_ip: v4 })
            );
            prop_assert_eq!(
                parse(&neighbor_solicitation(mac, v6, v6)),
                Ok(Inbound::NeighborSolicitation {
                    src_mac: mac,
                    src_ip: v6,
                    target: v6,
                    source_lladdr: if v6.is_unspecified() { None } else { Some(mac) },
                })
            );
            let na = unsolicited_neighbor_advertisement(mac, v6);
            let icmp = Icmpv6Packet::new(icmp_body(&na)).expect("icmp");
            prop_assert_eq!(icmp.get_checksum(), pnet_icmpv6_checksum(&icmp, &v6, &ALL_NODES));
        }
    }
}
