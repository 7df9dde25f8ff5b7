//! Socket set-up for BGP (TCP) and BFD (UDP, RFC 5881). All socket options live here.
//!
//! Linux-specific options (TCP_MD5SIG, IP_RECVTTL) are not exposed by socket2, and `libc` is not
//! a direct dependency of the speaker, so the one libc call needed (`setsockopt`) is declared
//! here; std already links libc on every target we build for.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

pub const BGP_PORT: u16 = 179;
/// RFC 5881 §4: single-hop BFD control packets go to this port.
pub const BFD_CONTROL_PORT: u16 = 3784;
/// RFC 5881 §4: source ports must be in this range.
pub const BFD_SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// How to reach one BGP peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The peer's address; for an `interface` peer only the port counts (the address is the
    /// router's link-local address, learned when connecting).
    pub peer: SocketAddr,
    /// Unnumbered: the interface whose router (learned from its router advertisements) we peer
    /// with over IPv6 link-local.
    pub interface: Option<String>,
    /// Passive: never connect; accept the peer's connection on this local port.
    pub listen_port: Option<u16>,
    /// Bind to this address before connecting (the session's source address).
    pub source: Option<IpAddr>,
    /// TCP MD5 signature (RFC 2385) shared secret; at most 80 bytes.
    pub md5_password: Option<String>,
    /// IP TTL / IPv6 hop limit of outgoing packets; `None` leaves the kernel default.
    pub ttl: Option<u8>,
    pub connect_timeout: Duration,
}

impl TransportConfig {
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            interface: None,
            listen_port: None,
            source: None,
            md5_password: None,
            ttl: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// TTL for a session: 1 for directly connected eBGP, 255 for eBGP multihop, kernel default for
/// iBGP (GTSM is not used).
pub fn bgp_ttl(ebgp: bool, multihop: bool) -> Option<u8> {
    match (ebgp, multihop) {
        (true, true) => Some(255),
        (true, false) => Some(1),
        (false, _) => None,
    }
}

impl TransportConfig {
    /// Where to connect now: `peer`, or for an interface peer the router's link-local address
    /// on that interface (with its scope), as last learned from its router advertisements.
    pub fn resolve(&self) -> io::Result<SocketAddr> {
        let Some(iface) = &self.interface else {
            return Ok(self.peer);
        };
        let (ifindex, router) = super::unnumbered::router_on(iface)?;
        Ok(SocketAddr::V6(SocketAddrV6::new(
            router,
            self.peer.port(),
            0,
            ifindex,
        )))
    }
}

/// Opens the TCP connection to a peer with all options applied before the SYN is sent.
pub async fn connect(cfg: &TransportConfig) -> io::Result<TcpStream> {
    let peer = cfg.resolve()?;
    let domain = Domain::for_address(peer);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(ttl) = cfg.ttl {
        set_ttl(&socket, peer.ip(), ttl)?;
    }
    if let Some(key) = &cfg.md5_password {
        // Must precede connect(): the SYN already carries the signature.
        set_tcp_md5sig(&socket, peer, key.as_bytes())?;
    }
    if let Some(src) = cfg.source {
        socket.bind(&SocketAddr::new(src, 0).into())?;
    }
    let tcp = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    match tokio::time::timeout(cfg.connect_timeout, tcp.connect(peer)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

fn set_ttl(socket: &Socket, peer: IpAddr, ttl: u8) -> io::Result<()> {
    match peer {
        IpAddr::V4(_) => socket.set_ttl_v4(ttl.into()),
        IpAddr::V6(_) => socket.set_unicast_hops_v6(ttl.into()),
    }
}

// ---- raw setsockopt for options socket2 does not cover ---------------------------------------

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::c_void;
    use std::io;
    use std::os::fd::AsRawFd;

    pub const IPPROTO_IP: i32 = 0;
    pub const IPPROTO_TCP: i32 = 6;
    pub const IPPROTO_IPV6: i32 = 41;
    pub const IP_TTL: i32 = 2;
    pub const IP_RECVTTL: i32 = 12;
    pub const IPV6_HOPLIMIT: i32 = 52;
    pub const IPPROTO_ICMPV6: i32 = 58;
    pub const ICMP6_FILTER: i32 = 1;
    pub const TCP_MD5SIG: i32 = 14;
    pub const TCP_MD5SIG_MAXKEYLEN: usize = 80;

    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const c_void, len: u32) -> i32;
    }

    /// `struct tcp_md5sig` from <linux/tcp.h>.
    #[repr(C)]
    pub struct TcpMd5Sig {
        pub addr: [u8; 128], // struct __kernel_sockaddr_storage
        pub flags: u8,
        pub prefixlen: u8,
        pub keylen: u16,
        pub ifindex: i32,
        pub key: [u8; TCP_MD5SIG_MAXKEYLEN],
    }

    /// Sets a socket option from a plain-old-data value.
    pub fn set_option<T>(sock: &impl AsRawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
        let len = u32::try_from(std::mem::size_of::<T>())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `value` is a live reference to `len` readable bytes for the whole call, and
        // the kernel only reads it. Callers pass #[repr(C)] structs or integers.
        let rc = unsafe {
            setsockopt(
                sock.as_raw_fd(),
                level,
                name,
                (value as *const T).cast::<c_void>(),
                len,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Installs an RFC 2385 TCP MD5 signature key for `peer` on `socket` (Linux TCP_MD5SIG); an
/// empty key removes the peer's key (a listener's, when the peer goes).
#[cfg(target_os = "linux")]
pub fn set_tcp_md5sig(
    socket: &impl std::os::fd::AsRawFd,
    peer: SocketAddr,
    key: &[u8],
) -> io::Result<()> {
    if key.len() > sys::TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP MD5 key longer than 80 bytes",
        ));
    }
    let mut sig = sys::TcpMd5Sig {
        addr: [0; 128],
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; sys::TCP_MD5SIG_MAXKEYLEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    let sa = SockAddr::from(peer);
    // SAFETY: `as_ptr` points at `len()` initialised bytes of a sockaddr, at most 128.
    let bytes = unsafe { std::slice::from_raw_parts(sa.as_ptr().cast::<u8>(), sa.len() as usize) };
    let n = bytes.len().min(sig.addr.len());
    sig.addr[..n].copy_from_slice(&bytes[..n]);
    sys::set_option(socket, sys::IPPROTO_TCP, sys::TCP_MD5SIG, &sig)
}

#[cfg(not(target_os = "linux"))]
pub fn set_tcp_md5sig(
    _socket: &impl std::os::fd::AsRawFd,
    _peer: SocketAddr,
    _key: &[u8],
) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP MD5 signatures need Linux",
    ))
}

/// A listening socket for passive peers on `local` (`0.0.0.0` or `::`, IPv6 only) and `port`.
/// Ports below 1024 need CAP_NET_BIND_SERVICE.
pub fn listen(local: IpAddr, port: u16) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(local, port);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_reuse_address(true)?;
    if local.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(16)?;
    TcpListener::from_std(socket.into())
}

/// An ICMPv6 socket on `iface` for router advertisements (unnumbered peering): bound to the
/// interface, hop limit 255 (RFC 4861 requires it of ND messages), reporting the received hop
/// limit, passing only RAs in. Needs CAP_NET_RAW. Raw sockets are datagram sockets, so tokio's
/// `UdpSocket` drives it (and [`recv_with_ttl`] reads it).
pub fn icmpv6_socket(iface: &str, ifindex: u32) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.set_nonblocking(true)?;
    socket.bind_device(Some(iface.as_bytes()))?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_loop_v6(false)?;
    socket.set_recv_hoplimit_v6(true)?;
    pass_only_router_advertisements(&socket)?;
    UdpSocket::from_std(socket.into())
}

/// ICMP6_FILTER: a set bit blocks that ICMPv6 type.
#[cfg(target_os = "linux")]
fn pass_only_router_advertisements(socket: &Socket) -> io::Result<()> {
    let mut blocked = [u32::MAX; 8];
    let t = usize::from(super::unnumbered::ND_ROUTER_ADVERT);
    blocked[t >> 5] &= !(1u32 << (t & 31));
    sys::set_option(socket, sys::IPPROTO_ICMPV6, sys::ICMP6_FILTER, &blocked)
}

#[cfg(not(target_os = "linux"))]
fn pass_only_router_advertisements(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

// ---- BFD sockets (RFC 5881) ------------------------------------------------------------------

/// An unbound non-blocking UDP socket of `local`'s family.
fn nonblocking_udp(local: IpAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(SocketAddr::new(local, 0)),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Socket receiving BFD control packets on `local:3784`, reporting the received TTL/hop limit.
pub fn bfd_rx_socket(local: IpAddr) -> io::Result<UdpSocket> {
    let socket = nonblocking_udp(local)?;
    socket.set_reuse_address(true)?;
    match local {
        IpAddr::V4(_) => set_recv_ttl_v4(&socket)?,
        IpAddr::V6(_) => {
            socket.set_only_v6(true)?;
            socket.set_recv_hoplimit_v6(true)?;
        }
    }
    socket.bind(&SocketAddr::new(local, BFD_CONTROL_PORT).into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(target_os = "linux")]
fn set_recv_ttl_v4(socket: &Socket) -> io::Result<()> {
    sys::set_option(socket, sys::IPPROTO_IP, sys::IP_RECVTTL, &1i32)
}

#[cfg(not(target_os = "linux"))]
fn set_recv_ttl_v4(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Socket sending BFD control packets from a port in 49152..=65535 with TTL 255.
pub fn bfd_tx_socket(local: IpAddr, peer: IpAddr) -> io::Result<UdpSocket> {
    let socket = nonblocking_udp(local)?;
    set_ttl(&socket, peer, 255)?;
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    // Start at a port derived from the peer so sessions spread over the range.
    let span = u32::from(BFD_SOURCE_PORTS.end() - BFD_SOURCE_PORTS.start()) + 1;
    let seed = match peer {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => (u128::from(a) as u32) ^ ((u128::from(a) >> 32) as u32),
    };
    for i in 0..span {
        let port = *BFD_SOURCE_PORTS.start() as u32 + (seed.wrapping_add(i) % span);
        match socket.bind(&SocketAddr::new(local, port as u16).into()) {
            Ok(()) => {
                socket.connect(&SocketAddr::new(peer, BFD_CONTROL_PORT).into())?;
                return UdpSocket::from_std(socket.into());
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Receives one datagram and the TTL (IPv4) or hop limit (IPv6) it arrived with.
///
/// RFC 5881 §5: single-hop BFD packets must arrive with TTL 255; callers drop others.
pub async fn recv_with_ttl(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    loop {
        socket.readable().await?;
        let r = socket.try_io(tokio::io::Interest::READABLE, || {
            let sock = SockRef::from(socket);
            let mut control = [std::mem::MaybeUninit::<u8>::uninit(); 128];
            let data = as_uninit(buf);
            let mut bufs = [socket2::MaybeUninitSlice::new(data)];
            // Room for an IPv6 source: recvmsg truncates the address to this length.
            let mut addr = SockAddr::from(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)));
            let mut msg = socket2::MsgHdrMut::new()
                .with_addr(&mut addr)
                .with_buffers(&mut bufs)
                .with_control(&mut control);
            let n = sock.recvmsg(&mut msg, 0)?;
            let clen = msg.control_len();
            let ctrl: Vec<u8> = control[..clen.min(control.len())]
                .iter()
                // SAFETY: the kernel initialised the first `control_len` bytes.
                .map(|b| unsafe { b.assume_init() })
                .collect();
            Ok((n, addr.as_socket(), parse_ttl(&ctrl)))
        });
        match r {
            Ok((n, Some(from), ttl)) => return Ok((n, from, ttl)),
            Ok((_, None, _)) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Views an initialised buffer as `MaybeUninit` for recvmsg (which only writes to it).
fn as_uninit(buf: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and recvmsg only writes
    // initialised bytes into the buffer, so it stays initialised.
    unsafe {
        std::slice::from_raw_parts_mut(
            buf.as_mut_ptr().cast::<std::mem::MaybeUninit<u8>>(),
            buf.len(),
        )
    }
}

/// Extracts IP_TTL / IPV6_HOPLIMIT from a Linux control-message buffer.
///
/// Layout (64-bit and 32-bit alike): `cmsg_len: usize`, `cmsg_level: i32`, `cmsg_type: i32`,
/// then data aligned to `usize`.
pub fn parse_ttl(control: &[u8]) -> Option<u8> {
    #[cfg(target_os = "linux")]
    {
        const W: usize = std::mem::size_of::<usize>();
        let align = |n: usize| n.div_ceil(W) * W;
        let hdr = align(W + 8);
        let mut off = 0;
        while off + hdr <= control.len() {
            let len = usize::from_ne_bytes(control[off..off + W].try_into().ok()?);
            let level = i32::from_ne_bytes(control[off + W..off + W + 4].try_into().ok()?);
            let ty = i32::from_ne_bytes(control[off + W + 4..off + W + 8].try_into().ok()?);
            if len < hdr || off + len > control.len() {
                return None;
            }
            let data = &control[off + hdr..off + len];
            let is_ttl = (level == sys::IPPROTO_IP && ty == sys::IP_TTL)
                || (level == sys::IPPROTO_IPV6 && ty == sys::IPV6_HOPLIMIT);
            if is_ttl && data.len() >= 4 {
                let v = i32::from_ne_bytes(data[..4].try_into().ok()?);
                return u8::try_from(v).ok();
            }
            off += align(len);
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = control;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ttl_policy() {
        assert_eq!(bgp_ttl(true, false), Some(1));
        assert_eq!(bgp_ttl(true, true), Some(255));
        assert_eq!(bgp_ttl(false, false), None);
        assert_eq!(bgp_ttl(false, true), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn parse_ttl_control_messages() {
        const W: usize = std::mem::size_of::<usize>();
        let mut c = Vec::new();
        // An unrelated cmsg first, then IP_TTL = 255.
        for (level, ty, val) in [(0i32, 8i32, 7i32), (0, 2, 255)] {
            c.extend_from_slice(&(W + 8 + 4).to_ne_bytes());
            c.extend_from_slice(&level.to_ne_bytes());
            c.extend_from_slice(&ty.to_ne_bytes());
            c.extend_from_slice(&val.to_ne_bytes());
            while c.len() % W != 0 {
                c.push(0);
            }
        }
        assert_eq!(parse_ttl(&c), Some(255));
        assert_eq!(parse_ttl(&c[..W + 8 + 4]), None);
        assert_eq!(parse_ttl(&[]), None);
        assert_eq!(parse_ttl(&[0xff; 40]), None);
    }

    #[tokio::test]
    async fn loopback_connect_with_options() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = TransportConfig::new(listener.local_addr().unwrap());
        cfg.source = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        cfg.ttl = Some(1);
        let (c, a) = tokio::join!(connect(&cfg), listener.accept());
        let c = c.unwrap();
        assert!(c.nodelay().unwrap());
        assert_eq!(c.ttl().unwrap(), 1);
        assert_eq!(a.unwrap().1.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn md5_mismatch_prevents_connection() {
        // The listener has no key, so the kernel drops our signed SYNs: connect must time out
        // (or be refused), proving the option was applied.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = TransportConfig::new(listener.local_addr().unwrap());
        cfg.md5_password = Some("secret".into());
        cfg.connect_timeout = Duration::from_millis(300);
        let accept = tokio::time::timeout(Duration::from_millis(500), listener.accept());
        let (c, a) = tokio::join!(connect(&cfg), accept);
        assert!(c.is_err() || a.is_err());
        let too_long = TransportConfig {
            md5_password: Some("x".repeat(81)),
            ..cfg
        };
        assert!(connect(&too_long).await.is_err());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bfd_sockets_report_ttl_255() {
        // 127.0.0.3: the driver's BFD test uses .1 and .2, and tests run in parallel.
        let lo = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        let Ok(rx) = bfd_rx_socket(lo) else {
            // Port 3784 may be taken on a shared machine; the lab test covers this too.
            return;
        };
        let tx = bfd_tx_socket(lo, lo).unwrap();
        let port = tx.local_addr().unwrap().port();
        assert!(BFD_SOURCE_PORTS.contains(&port));
        tx.send(b"hello").await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from, ttl) = recv_with_ttl(&rx, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.port(), port);
        assert_eq!(ttl, Some(255));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bfd_sockets_report_the_ipv6_source_and_hop_limit() {
        let lo = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let Ok(rx) = bfd_rx_socket(lo) else {
            eprintln!("skipped: [::1]:3784 is taken");
            return;
        };
        let tx = bfd_tx_socket(lo, lo).unwrap();
        tx.send(b"hello").await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from, ttl) = recv_with_ttl(&rx, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        // The whole address: a sockaddr_in-sized buffer would cut it to its first 8 bytes.
        assert_eq!(from, tx.local_addr().unwrap());
        assert_eq!(ttl, Some(255));
    }
}
