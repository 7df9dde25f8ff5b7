//! Linux I/O for L2 mode: interface discovery from `/sys/class/net`, one
//! AF_PACKET socket per interface (non-blocking, driven by tokio's `AsyncFd`)
//! and solicited-node multicast membership. Kept thin: every decision lives
//! in the pure modules.
//!
//! Needs CAP_NET_RAW. Uses socket2 only; the few `unsafe` blocks build and
//! read a `sockaddr_ll`, which socket2 has no constructor for.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::net::Ipv6Addr;
use std::path::Path;

use socket2::{Domain, SockAddr, SockAddrStorage, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::announcer::IfaceName;
use super::frame::MacAddr;

/// Where the kernel lists network interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

// From <linux/if.h>, <linux/if_arp.h>, <linux/if_ether.h>, <linux/if_packet.h>.
const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_NOARP: u32 = 0x80;
const IFF_SLAVE: u32 = 0x800;
const ARPHRD_ETHER: u16 = 1;
const AF_PACKET: u16 = 17;
const ETH_P_ALL: u16 = 0x0003;
const PACKET_OTHERHOST: u8 = 3;
const PACKET_OUTGOING: u8 = 4;

/// A network interface fit for L2 announcements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: IfaceName,
    pub ifindex: u32,
    pub mac: MacAddr,
}

/// Why an interface is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsuitable {
    #[error("administratively down")]
    Down,
    #[error("no carrier (operstate not up)")]
    NoCarrier,
    #[error("loopback")]
    Loopback,
    #[error("NOARP")]
    NoArp,
    #[error("not Ethernet")]
    NotEthernet,
    #[error("no MAC address")]
    NoMac,
    /// Bond slave or bridge/VRF port: the master answers for it, so
    /// answering here too would send duplicates from the wrong device.
    #[error("enslaved to a master device")]
    Enslaved,
    #[error("attributes unreadable")]
    Unreadable,
}

/// The attributes of `/sys/class/net/<name>/` that decide suitability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysAttributes {
    /// `flags`, e.g. `0x1003`.
    pub flags: String,
    /// `type`, e.g. `1`.
    pub link_type: String,
    /// `address`, e.g. `02:00:00:00:00:01`.
    pub address: String,
    /// `operstate`, e.g. `up`.
    pub operstate: String,
    /// `ifindex`, e.g. `2`.
    pub ifindex: String,
    /// Whether the `master` link exists.
    pub has_master: bool,
}

/// Decides whether an interface is fit for announcements. Pure.
pub fn classify(name: &str, attrs: &SysAttributes) -> Result<Interface, Unsuitable> {
    let flags = attrs
        .flags
        .trim()
        .strip_prefix("0x")
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or(Unsuitable::Unreadable)?;
    if flags & IFF_LOOPBACK != 0 {
        return Err(Unsuitable::Loopback);
    }
    if flags & IFF_UP == 0 {
        return Err(Unsuitable::Down);
    }
    if flags & IFF_NOARP != 0 {
        return Err(Unsuitable::NoArp);
    }
    if flags & IFF_SLAVE != 0 || attrs.has_master {
        return Err(Unsuitable::Enslaved);
    }
    if attrs.link_type.trim().parse::<u16>() != Ok(ARPHRD_ETHER) {
        return Err(Unsuitable::NotEthernet);
    }
    // "unknown" is what drivers without carrier reporting show.
    if !matches!(attrs.operstate.trim(), "up" | "unknown") {
        return Err(Unsuitable::NoCarrier);
    }
    let mac: MacAddr = attrs.address.parse().map_err(|_| Unsuitable::NoMac)?;
    if mac.is_zero() || mac.is_multicast() {
        return Err(Unsuitable::NoMac);
    }
    let ifindex = attrs
        .ifindex
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or(Unsuitable::Unreadable)?;
    Ok(Interface {
        name: name.to_owned(),
        ifindex,
        mac,
    })
}

/// Every interface under `root` (normally [`SYS_CLASS_NET`]) and whether it
/// is suitable. Interfaces vanishing mid-scan show as `Unreadable`.
pub fn scan_interfaces(
    root: &Path,
) -> io::Result<BTreeMap<IfaceName, Result<Interface, Unsuitable>>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let dir = entry.path();
        let read = |file: &str| fs::read_to_string(dir.join(file));
        let attrs = (|| {
            Ok::<_, io::Error>(SysAttributes {
                flags: read("flags")?,
                link_type: read("type")?,
                address: read("address")?,
                operstate: read("operstate")?,
                ifindex: read("ifindex")?,
                has_master: dir.join("master").exists(),
            })
        })();
        let verdict = match attrs {
            Ok(attrs) => classify(&name, &attrs),
            Err(_) => Err(Unsuitable::Unreadable),
        };
        out.insert(name, verdict);
    }
    Ok(out)
}

/// The suitable interfaces on this host, by name.
pub fn suitable_interfaces() -> io::Result<BTreeMap<IfaceName, Interface>> {
    Ok(scan_interfaces(Path::new(SYS_CLASS_NET))?
        .into_iter()
        .filter_map(|(name, verdict)| verdict.ok().map(|iface| (name, iface)))
        .collect())
}

/// `struct sockaddr_ll` from <linux/if_packet.h>.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockaddrLl {
    sll_family: u16,
    sll_protocol: u16,
    sll_ifindex: i32,
    sll_hatype: u16,
    sll_pkttype: u8,
    sll_halen: u8,
    sll_addr: [u8; 8],
}

fn sockaddr_ll(ifindex: u32, protocol: u16) -> io::Result<SockAddr> {
    let ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: SockaddrLl is a sockaddr type of this platform (AF_PACKET) and
    // smaller than sockaddr_storage; the length passed matches it.
    unsafe {
        *storage.view_as::<SockaddrLl>() = SockaddrLl {
            sll_family: AF_PACKET,
            sll_protocol: protocol.to_be(),
            sll_ifindex: ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        Ok(SockAddr::new(
            storage,
            size_of::<SockaddrLl>() as socket2::socklen_t,
        ))
    }
}

/// `sll_pkttype` of a received frame's address, if it is an AF_PACKET one.
fn pkttype(addr: &SockAddr) -> Option<u8> {
    if addr.family() != AF_PACKET || (addr.len() as usize) < size_of::<SockaddrLl>() - 8 {
        return None;
    }
    let mut storage = addr.clone().as_storage();
    // SAFETY: the family says the kernel wrote a sockaddr_ll, and the length
    // check covers every field up to sll_addr.
    let ll = unsafe { *storage.view_as::<SockaddrLl>() };
    Some(ll.sll_pkttype)
}

// Classic BPF opcodes (<linux/filter.h>).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
/// Ancillary data loads: SKF_AD_OFF (-0x1000) plus the field.
const SKF_AD_PKTTYPE: u32 = 0xffff_f000 + 4;
const SKF_AD_VLAN_TAG_PRESENT: u32 = 0xffff_f000 + 48;

/// Keeps only what the announcer can answer, so the kernel does not copy
/// every frame of a busy interface to us: untagged (a NIC-stripped VLAN tag
/// means the frame belongs to a VLAN device), not our own outgoing frames
/// nor frames for other hosts, and either ARP requests and replies or IPv6 ICMPv6
/// Neighbor Solicitations and Advertisements (without extension headers). Replies and
/// advertisements are let through for address conflict detection (`conflict.rs`).
///
/// (code, jt, jf, k); jumps are relative to the next instruction.
pub(crate) const FILTER: [(u16, u8, u8, u32); 18] = [
    /* 0 */ (LD_W_ABS, 0, 0, SKF_AD_VLAN_TAG_PRESENT),
    /* 1 */ (JEQ_K, 0, 15, 0), // tagged -> drop
    /* 2 */ (LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),
    /* 3 */ (JEQ_K, 13, 0, PACKET_OUTGOING as u32), // -> drop
    /* 4 */ (JEQ_K, 12, 0, PACKET_OTHERHOST as u32), // -> drop
    /* 5 */ (LD_H_ABS, 0, 0, 12), // ethertype
    /* 6 */ (JEQ_K, 0, 3, 0x0806), // ARP? else -> 10
    /* 7 */ (LD_H_ABS, 0, 0, 20), // ARP operation
    /* 8 */ (JEQ_K, 7, 0, 1), // request -> accept
    /* 9 */ (JEQ_K, 6, 7, 2), // reply -> accept, else drop
    /* 10 */ (JEQ_K, 0, 6, 0x86dd), // IPv6? else drop
    /* 11 */ (LD_B_ABS, 0, 0, 20), // next header
    /* 12 */ (JEQ_K, 0, 4, 58), // ICMPv6? else drop
    /* 13 */ (LD_B_ABS, 0, 0, 54), // ICMPv6 type
    /* 14 */ (JEQ_K, 1, 0, 135), // NS -> accept
    /* 15 */ (JEQ_K, 0, 1, 136), // NA -> accept, else drop
    /* 16 */ (RET_K, 0, 0, 0x0004_0000), // accept whole frame
    /* 17 */ (RET_K, 0, 0, 0), // drop
];

fn filter() -> Vec<SockFilter> {
    FILTER
        .iter()
        .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
        .collect()
}

/// A raw socket receiving ARP requests and replies and Neighbor Solicitations and Advertisements on one
/// interface and sending frames out of it.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
}

impl PacketSocket {
    /// Opens the socket on `ifindex`. Must run inside a tokio runtime.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        // Protocol 0 receives nothing, so no unfiltered frame can queue up
        // before the filter is attached; bind then starts reception.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
        socket.attach_filter(&filter())?;
        socket.bind(&sockaddr_ll(ifindex, ETH_P_ALL)?)?;
        socket.set_nonblocking(true)?;
        // SAFETY: the Socket owns its descriptor and keeps it open for as
        // long as the AsyncFd owns the Socket; it is never replaced.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self { fd })
    }

    /// Receives one frame into `buf`, returning its length (truncated to
    /// `buf`). Frames the filter should already have removed (our own
    /// outgoing ones, other hosts') are skipped here too.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let Ok(result) = guard.try_io(|fd| recv_frame(fd.get_ref(), buf)) else {
                continue;
            };
            match result? {
                (_, Some(PACKET_OUTGOING | PACKET_OTHERHOST)) => continue,
                (len, _) => return Ok(len),
            }
        }
    }

    /// Sends one complete Ethernet frame out of the bound interface.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than an Ethernet header",
            ));
        }
        loop {
            let mut guard = self.fd.writable().await?;
            if let Ok(result) = guard.try_io(|fd| fd.get_ref().send(frame)) {
                return result.map(drop);
            }
        }
    }
}

fn recv_frame(socket: &Socket, buf: &mut [u8]) -> io::Result<(usize, Option<u8>)> {
    // SAFETY: an initialised buffer viewed as MaybeUninit; recv only writes
    // initialised bytes to it and never de-initialises any.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let (len, addr) = socket.recv_from(uninit)?;
    Ok((len.min(buf.len()), pkttype(&addr)))
}

/// Link changes (an interface up, down, added, removed, renamed), from the kernel's rtnetlink
/// link group: each one makes the runtime rescan at once instead of at its next periodic
/// rescan (10 s). Without it, a node whose link came back re-announced only at that rescan, and
/// its neighbours kept sending to the node that had stood in for it. The messages are not
/// parsed: the rescan reads the truth from sysfs.
#[derive(Debug)]
pub struct LinkWatch {
    fd: AsyncFd<Socket>,
}

/// `struct sockaddr_nl` from <linux/netlink.h>.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockaddrNl {
    nl_family: u16,
    nl_pad: u16,
    nl_pid: u32,
    nl_groups: u32,
}

const AF_NETLINK: u16 = 16;
const NETLINK_ROUTE: i32 = 0;
/// RTMGRP_LINK: link (interface) notifications.
const RTMGRP_LINK: u32 = 1;

impl LinkWatch {
    /// Subscribes to link notifications. Must run inside a tokio runtime.
    pub fn open() -> io::Result<Self> {
        let socket = Socket::new(
            Domain::from(i32::from(AF_NETLINK)),
            Type::RAW,
            Some(socket2::Protocol::from(NETLINK_ROUTE)),
        )?;
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: SockaddrNl is this platform's sockaddr_nl (AF_NETLINK) and smaller than
        // sockaddr_storage; the length passed matches it.
        let addr = unsafe {
            *storage.view_as::<SockaddrNl>() = SockaddrNl {
                nl_family: AF_NETLINK,
                nl_pad: 0,
                nl_pid: 0,
                nl_groups: RTMGRP_LINK,
            };
            SockAddr::new(storage, size_of::<SockaddrNl>() as socket2::socklen_t)
        };
        socket.bind(&addr)?;
        socket.set_nonblocking(true)?;
        // SAFETY: as for PacketSocket: the AsyncFd owns the Socket for its whole life.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self { fd })
    }

    /// Waits for the next batch of link notifications (drains what is queued). An overrun
    /// (ENOBUFS: notifications were lost) counts as a change too.
    pub async fn changed(&self) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_frame(fd.get_ref(), &mut buf)) {
                Err(_would_block) => continue,
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.raw_os_error() == Some(105) => {} // ENOBUFS
                Ok(Err(e)) => return Err(e),
            }
            // Drain the rest of the burst without waiting.
            while let Ok(Ok(_)) = guard.try_io(|fd| recv_frame(fd.get_ref(), &mut buf)) {}
            return Ok(());
        }
    }
}

/// Solicited-node multicast groups joined on one interface.
///
/// Joined at the IPv6 layer (a UDP socket that is never bound, so it never
/// receives anything) rather than with PACKET_ADD_MEMBERSHIP: the kernel
/// then also sends MLD reports, without which MLD-snooping switches would
/// not forward the solicitations to us. Closing drops every membership.
#[derive(Debug)]
pub struct GroupMembership {
    socket: Socket,
    ifindex: u32,
    joined: BTreeSet<Ipv6Addr>,
}

impl GroupMembership {
    pub fn new(ifindex: u32) -> io::Result<Self> {
        Ok(Self {
            socket: Socket::new(Domain::IPV6, Type::DGRAM, None)?,
            ifindex,
            joined: BTreeSet::new(),
        })
    }

    pub fn join(&mut self, group: Ipv6Addr) -> io::Result<()> {
        if !self.joined.contains(&group) {
            self.socket.join_multicast_v6(&group, self.ifindex)?;
            self.joined.insert(group);
        }
        Ok(())
    }

    pub fn leave(&mut self, group: Ipv6Addr) -> io::Result<()> {
        if self.joined.remove(&group) {
            self.socket.leave_multicast_v6(&group, self.ifindex)?;
        }
        Ok(())
    }

    pub fn joined(&self) -> &BTreeSet<Ipv6Addr> {
        &self.joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::frame;
    use std::net::Ipv4Addr;

    fn attrs() -> SysAttributes {
        SysAttributes {
            flags: "0x1003\n".into(),
            link_type: "1\n".into(),
            address: "02:00:00:00:00:01\n".into(),
            operstate: "up\n".into(),
            ifindex: "7\n".into(),
            has_master: false,
        }
    }

    #[test]
    fn classify_accepts_an_ordinary_nic() {
        assert_eq!(
            classify("eth0", &attrs()),
            Ok(Interface {
                name: "eth0".into(),
                ifindex: 7,
                mac: MacAddr([2, 0, 0, 0, 0, 1])
            })
        );
        let unknown = SysAttributes {
            operstate: "unknown".into(),
            ..attrs()
        };
        assert!(classify("tap0", &unknown).is_ok());
    }

    #[test]
    fn classify_rejects_unsuitable() {
        let cases = [
            (
                SysAttributes {
                    flags: "0x1002".into(),
                    ..attrs()
                },
                Unsuitable::Down,
            ),
            (
                SysAttributes {
                    flags: "0x9".into(),
                    ..attrs()
                },
                Unsuitable::Loopback,
            ),
            (
                SysAttributes {
                    flags: "0x1083".into(),
                    ..attrs()
                },
                Unsuitable::NoArp,
            ),
            (
                SysAttributes {
                    flags: "0x1803".into(),
                    ..attrs()
                },
                Unsuitable::Enslaved,
            ),
            (
                SysAttributes {
                    has_master: true,
                    ..attrs()
                },
                Unsuitable::Enslaved,
            ),
            (
                SysAttributes {
                    link_type: "772".into(),
                    ..attrs()
                },
                Unsuitable::NotEthernet,
            ),
            (
                SysAttributes {
                    link_type: "65534".into(),
                    ..attrs()
                },
                Unsuitable::NotEthernet,
            ),
            (
                SysAttributes {
                    operstate: "down".into(),
                    ..attrs()
                },
                Unsuitable::NoCarrier,
            ),
            (
                SysAttributes {
                    operstate: "lowerlayerdown".into(),
                    ..attrs()
                },
                Unsuitable::NoCarrier,
            ),
            (
                SysAttributes {
                    address: "00:00:00:00:00:00".into(),
                    ..attrs()
                },
                Unsuitable::NoMac,
            ),
            (
                SysAttributes {
                    address: "".into(),
                    ..attrs()
                },
                Unsuitable::NoMac,
            ),
            (
                SysAttributes {
                    address: "01:00:5e:00:00:01".into(),
                    ..attrs()
                },
                Unsuitable::NoMac,
            ),
            (
                SysAttributes {
                    flags: "garbage".into(),
                    ..attrs()
                },
                Unsuitable::Unreadable,
            ),
            (
                SysAttributes {
                    ifindex: "0".into(),
                    ..attrs()
                },
                Unsuitable::Unreadable,
            ),
            (
                SysAttributes {
                    ifindex: "x".into(),
                    ..attrs()
                },
                Unsuitable::Unreadable,
            ),
        ];
        for (attrs, want) in cases {
            assert_eq!(classify("x", &attrs), Err(want), "{attrs:?}");
        }
    }

    #[test]
    fn scan_reads_a_sysfs_tree() {
        let root = std::env::temp_dir().join(format!("ferrolb-l2-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let write = |name: &str, a: &SysAttributes| {
            let dir = root.join(name);
            fs::create_dir_all(&dir).expect("mkdir");
            for (file, value) in [
                ("flags", &a.flags),
                ("type", &a.link_type),
                ("address", &a.address),
                ("operstate", &a.operstate),
                ("ifindex", &a.ifindex),
            ] {
                fs::write(dir.join(file), value).expect("write");
            }
            if a.has_master {
                fs::create_dir_all(dir.join("master")).expect("mkdir master");
            }
        };
        write("eth0", &attrs());
        write(
            "lo",
            &SysAttributes {
                flags: "0x9".into(),
                link_type: "772".into(),
                ..attrs()
            },
        );
        write(
            "eth1",
            &SysAttributes {
                has_master: true,
                ..attrs()
            },
        );
        fs::create_dir_all(root.join("half-gone")).expect("mkdir");
        let scan = scan_interfaces(&root).expect("scan");
        let _ = fs::remove_dir_all(&root);
        assert_eq!(scan.len(), 4);
        assert!(scan["eth0"].is_ok());
        assert_eq!(scan["lo"], Err(Unsuitable::Loopback));
        assert_eq!(scan["eth1"], Err(Unsuitable::Enslaved));
        assert_eq!(scan["half-gone"], Err(Unsuitable::Unreadable));
    }

    #[test]
    fn sockaddr_ll_layout() {
        assert_eq!(size_of::<SockaddrLl>(), 20);
        let addr = sockaddr_ll(5, ETH_P_ALL).expect("addr");
        assert_eq!(addr.family(), AF_PACKET);
        assert_eq!(addr.len() as usize, 20);
        assert_eq!(pkttype(&addr), Some(0));
        assert!(sockaddr_ll(u32::MAX, ETH_P_ALL).is_err());
    }

    /// A classic BPF interpreter for the instructions [`FILTER`] uses.
    fn run_filter(frame: &[u8], pkttype: u8, vlan_tagged: bool) -> u32 {
        let mut pc = 0usize;
        let mut a: u32 = 0;
        loop {
            let (code, jt, jf, k) = FILTER[pc];
            pc += 1;
            let load = |size: usize| -> Option<u32> {
                let at = k as usize;
                let bytes = frame.get(at..at + size)?;
                Some(bytes.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)))
            };
            match code {
                LD_W_ABS if k == SKF_AD_PKTTYPE => a = u32::from(pkttype),
                LD_W_ABS if k == SKF_AD_VLAN_TAG_PRESENT => a = u32::from(vlan_tagged),
                // Out-of-bounds loads abort the program: drop.
                LD_W_ABS => match load(4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match load(2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match load(1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                JEQ_K => pc += usize::from(if a == k { jt } else { jf }),
                RET_K => return k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn filter_accepts_requests_and_claims_only() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let v4 = Ipv4Addr::new(198, 18, 200, 50);
        let v6: Ipv6Addr = "fd00:200::50".parse().expect("ip");
        let client6: Ipv6Addr = "fd00:200::2".parse().expect("ip");
        let accepted = [
            frame::arp_request(mac, Ipv4Addr::new(198, 18, 200, 2), v4),
            frame::gratuitous_arp_request(mac, v4),
            frame::neighbor_solicitation(mac, client6, v6),
            frame::neighbor_solicitation(mac, Ipv6Addr::UNSPECIFIED, v6),
            // Claims of an address, for conflict detection.
            frame::arp_reply(mac, v4, mac, v4),
            frame::gratuitous_arp_reply(mac, v4),
            frame::unsolicited_neighbor_advertisement(mac, v6),
        ];
        let mut rarp = frame::arp_reply(mac, v4, mac, v4);
        rarp[21] = 3;
        let mut echo = frame::neighbor_solicitation(mac, client6, v6);
        echo[54] = 128;
        let rejected = [rarp, echo, vec![0u8; 10], Vec::new()];
        const HOST: u8 = 0;
        const BROADCAST: u8 = 1;
        const MULTICAST: u8 = 2;
        for f in &accepted {
            for t in [HOST, BROADCAST, MULTICAST] {
                assert_eq!(run_filter(f, t, false), 0x4_0000);
            }
            assert_eq!(run_filter(f, PACKET_OUTGOING, false), 0);
            assert_eq!(run_filter(f, PACKET_OTHERHOST, false), 0);
            assert_eq!(run_filter(f, HOST, true), 0);
        }
        for f in &rejected {
            assert_eq!(run_filter(f, HOST, false), 0);
        }
        // UDP over IPv6 and other ethertypes.
        let mut udp = frame::neighbor_solicitation(mac, client6, v6);
        udp[20] = 17;
        assert_eq!(run_filter(&udp, HOST, false), 0);
        let mut ipv4 = frame::arp_request(mac, v4, v4);
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(run_filter(&ipv4, HOST, false), 0);
    }

    #[test]
    fn filter_jumps_stay_in_program() {
        for (pc, &(code, jt, jf, _)) in FILTER.iter().enumerate() {
            if code == JEQ_K {
                assert!(pc + 1 + usize::from(jt.max(jf)) < FILTER.len(), "pc {pc}");
            }
        }
        assert_eq!(FILTER.last().map(|i| i.0), Some(RET_K));
    }
}
