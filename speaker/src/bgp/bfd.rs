//! BFD (RFC 5880) single-hop (RFC 5881) asynchronous mode, sans-IO.
//!
//! [`ControlPacket`] is the wire format; [`BfdSession`] is the per-peer state machine. Like the
//! BGP FSM it consumes events and returns actions; timers are requested, never slept on.
//! Authentication ([`auth`]: keyed MD5/SHA1, plain and meticulous) is optional; without it a
//! packet with the A bit is discarded, with it a packet without valid authentication is. Demand
//! mode is not supported: we never set the D bit.

use std::time::Duration;

pub mod auth;
mod intervals;

pub use auth::{AuthError, AuthKey, AuthState, AuthType, Wire};

pub const BFD_VERSION: u8 = 1;
pub const PACKET_LEN: usize = 24;
/// RFC 5881 §5: single-hop packets are sent with TTL/hop limit 255 and, unless configured
/// otherwise ([`BfdConfig::min_ttl`]), only packets that arrive with 255 are accepted (GTSM: a
/// packet that crossed a router cannot have it).
pub const REQUIRED_TTL: u8 = 255;
/// RFC 5880 §6.8.3: transmit no faster than once per second until the session is Up.
pub const SLOW_START_TX: Duration = Duration::from_secs(1);

/// Diagnostic codes (RFC 5880 §4.1).
pub mod diag {
    pub const NONE: u8 = 0;
    pub const CONTROL_DETECTION_TIME_EXPIRED: u8 = 1;
    pub const NEIGHBOR_SIGNALED_DOWN: u8 = 3;
    pub const ADMINISTRATIVELY_DOWN: u8 = 7;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BfdState {
    AdminDown,
    Down,
    Init,
    Up,
}

impl BfdState {
    fn bits(self) -> u8 {
        match self {
            BfdState::AdminDown => 0,
            BfdState::Down => 1,
            BfdState::Init => 2,
            BfdState::Up => 3,
        }
    }

    fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => BfdState::AdminDown,
            1 => BfdState::Down,
            2 => BfdState::Init,
            _ => BfdState::Up,
        }
    }
}

/// The mandatory section of a BFD control packet (RFC 5880 §4.1); the authentication section
/// is handled by [`AuthState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: u8,
    pub state: BfdState,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub auth_present: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    /// Microseconds.
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

/// Why a received packet was discarded (RFC 5880 §6.8.6, RFC 5881 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("shorter than 24 bytes")]
    Truncated,
    #[error("unsupported version {0}")]
    BadVersion(u8),
    #[error("bad length field {0}")]
    BadLength(u8),
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("your discriminator is zero in state {0:?}")]
    ZeroYourDiscriminator(BfdState),
    #[error("your discriminator {0} is not ours")]
    WrongDiscriminator(u32),
    #[error("TTL {ttl:?} is below the minimum {min}")]
    BadTtl { ttl: Option<u8>, min: u8 },
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
}

impl PacketError {
    /// Short label for metrics (a small fixed set).
    pub fn reason(&self) -> &'static str {
        match self {
            PacketError::BadTtl { .. } => "ttl",
            PacketError::WrongDiscriminator(_) => "discriminator",
            PacketError::Auth(e) => e.reason(),
            _ => "malformed",
        }
    }
}

impl ControlPacket {
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[0] = (BFD_VERSION << 5) | (self.diag & 0x1f);
        b[1] = (self.state.bits() << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.auth_present) << 2)
            | (u8::from(self.demand) << 1)
            | u8::from(self.multipoint);
        b[2] = self.detect_mult;
        b[3] = PACKET_LEN as u8;
        b[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }

    /// Decodes and validates the mandatory section as far as possible without session context
    /// (the A bit is only reported: whether it is acceptable depends on the session).
    pub fn decode(buf: &[u8]) -> Result<Self, PacketError> {
        if buf.len() < PACKET_LEN {
            return Err(PacketError::Truncated);
        }
        let version = buf[0] >> 5;
        if version != BFD_VERSION {
            return Err(PacketError::BadVersion(version));
        }
        let flags = buf[1];
        let auth_present = flags & 0x04 != 0;
        let len = buf[3];
        let min = if auth_present { 26 } else { 24 };
        if usize::from(len) < min || usize::from(len) > buf.len() {
            return Err(PacketError::BadLength(len));
        }
        let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let p = ControlPacket {
            diag: buf[0] & 0x1f,
            state: BfdState::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            control_plane_independent: flags & 0x08 != 0,
            auth_present,
            demand: flags & 0x02 != 0,
            multipoint: flags & 0x01 != 0,
            detect_mult: buf[2],
            my_discriminator: word(4),
            your_discriminator: word(8),
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        };
        if p.detect_mult == 0 {
            return Err(PacketError::ZeroDetectMult);
        }
        if p.multipoint {
            return Err(PacketError::Multipoint);
        }
        if p.my_discriminator == 0 {
            return Err(PacketError::ZeroMyDiscriminator);
        }
        if p.your_discriminator == 0 && !matches!(p.state, BfdState::Down | BfdState::AdminDown) {
            return Err(PacketError::ZeroYourDiscriminator(p.state));
        }
        Ok(p)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdConfig {
    /// Non-zero and unique among our sessions.
    pub local_discriminator: u32,
    pub desired_min_tx: Duration,
    pub required_min_rx: Duration,
    pub detect_mult: u8,
    /// Passive role: do not transmit until the peer has been heard from.
    pub passive: bool,
    /// Seed for transmit jitter.
    pub seed: u64,
    /// Lowest TTL/hop limit accepted on received packets; [`REQUIRED_TTL`] unless an operator
    /// relaxes it.
    pub min_ttl: u8,
    /// Authenticate every packet sent and require it of every packet received.
    pub auth: Option<AuthKey>,
}

impl BfdConfig {
    pub fn new(local_discriminator: u32) -> Self {
        Self {
            local_discriminator: local_discriminator.max(1),
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            passive: false,
            seed: u64::from(local_discriminator) | 1,
            min_ttl: REQUIRED_TTL,
            auth: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BfdTimer {
    Transmit,
    Detect,
    /// Twice the detection time without packets: forget the peer's sequence number.
    AuthSeqReset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BfdEvent {
    Received(ControlPacket),
    TimerFired(BfdTimer),
    AdminDown,
    AdminUp,
    /// New local intervals; applied through a Poll sequence when Up.
    SetIntervals {
        desired_min_tx: Duration,
        required_min_rx: Duration,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BfdAction {
    Send(ControlPacket),
    SetTimer(BfdTimer, Duration),
    CancelTimer(BfdTimer),
    StateChanged {
        from: BfdState,
        to: BfdState,
        diag: u8,
    },
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn from_micros(us: u32) -> Duration {
    Duration::from_micros(us.into())
}

/// One BFD session (RFC 5880 §6.8.1 state variables).
#[derive(Clone, Debug)]
pub struct BfdSession {
    config: BfdConfig,
    state: BfdState,
    remote_state: BfdState,
    remote_discr: u32,
    local_diag: u8,
    /// bfd.DesiredMinTxInterval as advertised (≥ 1 s unless Up).
    desired_min_tx: Duration,
    /// Interval our transmit rate is based on; lags `desired_min_tx` during a Poll sequence
    /// that increases it (RFC 5880 §6.8.3).
    tx_basis: Duration,
    /// bfd.RequiredMinRxInterval as advertised.
    required_min_rx: Duration,
    /// Value used for our detection time; lags `required_min_rx` while a decrease is polled.
    rx_basis: Duration,
    remote_min_rx: Duration,
    remote_desired_min_tx: Duration,
    remote_detect_mult: u8,
    poll_active: bool,
    rng: u64,
    auth: Option<AuthState>,
    /// Whether an [`BfdTimer::AuthSeqReset`] is pending.
    auth_reset_armed: bool,
}

impl BfdSession {
    pub fn new(config: BfdConfig) -> Self {
        let desired = config.desired_min_tx.max(SLOW_START_TX);
        Self {
            config,
            state: BfdState::Down,
            remote_state: BfdState::Down,
            remote_discr: 0,
            local_diag: diag::NONE,
            desired_min_tx: desired,
            tx_basis: desired,
            required_min_rx: config.required_min_rx,
            rx_basis: config.required_min_rx,
            // RFC 5880 §6.8.1: initialised to 1 µs so we may transmit before hearing from the peer.
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            poll_active: false,
            rng: config.seed | 1,
            // The shell sets a random first sequence number (`set_xmit_auth_seq`).
            auth: config.auth.map(|k| AuthState::new(k, 0)),
            auth_reset_armed: false,
        }
    }

    /// Sets bfd.XmitAuthSeq; RFC 5880 §6.8.1 wants a random start.
    pub fn set_xmit_auth_seq(&mut self, seq: u32) {
        if let Some(a) = &mut self.auth {
            *a = AuthState::new(*a.key(), seq);
        }
    }

    /// Changes the lowest TTL accepted; takes effect with the next packet.
    pub fn set_min_ttl(&mut self, min_ttl: u8) {
        self.config.min_ttl = min_ttl;
    }

    /// Changes the key (or turns authentication on or off); takes effect with the next packet.
    /// The router must change at the same time: until then its packets are dropped, and the
    /// session goes down if that lasts longer than the detection time.
    pub fn set_auth(&mut self, key: Option<AuthKey>, xmit_seq: u32) {
        self.config.auth = key;
        match (key, &mut self.auth) {
            (Some(k), Some(a)) => a.set_key(k),
            (Some(k), None) => self.auth = Some(AuthState::new(k, xmit_seq)),
            (None, _) => self.auth = None,
        }
    }

    /// Encodes a packet for the wire, signing it (and advancing the sequence number) when
    /// authentication is configured.
    pub fn seal(&mut self, p: &ControlPacket) -> Wire {
        match &mut self.auth {
            Some(a) => a.seal(p.encode()),
            None => Wire::unsigned(p.encode()),
        }
    }

    pub fn state(&self) -> BfdState {
        self.state
    }

    pub fn local_discriminator(&self) -> u32 {
        self.config.local_discriminator
    }

    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// The peer's last reported state.
    pub fn remote_state(&self) -> BfdState {
        self.remote_state
    }

    pub fn poll_active(&self) -> bool {
        self.poll_active
    }

    /// Changes the detect multiplier we advertise (the peer's detection time for us). Takes
    /// effect with the next packet; no Poll sequence is needed (RFC 5880 §6.8.1).
    pub fn set_detect_mult(&mut self, detect_mult: u8) {
        self.config.detect_mult = detect_mult.max(1);
    }

    /// Actions to take when the session is created: start transmitting unless passive.
    pub fn start(&mut self) -> Vec<BfdAction> {
        let mut out = Vec::new();
        self.transmit(&mut out);
        out
    }

    /// Validates raw bytes (the RFC 5881 TTL check, the mandatory section, authentication)
    /// and handles the packet. A packet that fails any check changes nothing.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        ttl: Option<u8>,
    ) -> Result<Vec<BfdAction>, PacketError> {
        // First, as it is the cheapest (RFC 5881 §5 allows it before authentication). No TTL
        // (the socket could not tell) fails: we cannot show the packet came from the link.
        if ttl.is_none_or(|t| t < self.config.min_ttl) {
            return Err(PacketError::BadTtl {
                ttl,
                min: self.config.min_ttl,
            });
        }
        let p = ControlPacket::decode(bytes)?;
        if p.your_discriminator != 0 && p.your_discriminator != self.config.local_discriminator {
            return Err(PacketError::WrongDiscriminator(p.your_discriminator));
        }
        // RFC 5880 §6.8.6: A bit without authentication in use, or authentication in use and
        // no A bit (or a bad one): discard. `decode` checked Length against the datagram.
        let len = usize::from(bytes[3]);
        match &mut self.auth {
            None if p.auth_present => return Err(AuthError::NotConfigured.into()),
            None => {}
            Some(a) => a.verify(&bytes[..len], p.detect_mult)?,
        }
        let mut out = Vec::new();
        if self.auth_reset_armed {
            self.auth_reset_armed = false;
            out.push(BfdAction::CancelTimer(BfdTimer::AuthSeqReset));
        }
        out.extend(self.handle(BfdEvent::Received(p)));
        Ok(out)
    }

    pub fn handle(&mut self, event: BfdEvent) -> Vec<BfdAction> {
        let mut out = Vec::new();
        match event {
            BfdEvent::Received(p) => self.on_packet(p, &mut out),
            BfdEvent::TimerFired(BfdTimer::Transmit) => self.transmit(&mut out),
            BfdEvent::TimerFired(BfdTimer::Detect) => {
                // RFC 5880 §6.8.1: forget the peer's sequence number after twice the detection
                // time without packets (one has passed), in case it restarted.
                if self.auth.as_ref().is_some_and(AuthState::seq_known) {
                    self.auth_reset_armed = true;
                    out.push(BfdAction::SetTimer(
                        BfdTimer::AuthSeqReset,
                        self.detection_time(),
                    ));
                }
                // RFC 5880 §6.8.1: forget the peer after a silent detection time.
                self.remote_discr = 0;
                if matches!(self.state, BfdState::Init | BfdState::Up) {
                    self.transition(
                        BfdState::Down,
                        diag::CONTROL_DETECTION_TIME_EXPIRED,
                        &mut out,
                    );
                }
            }
            BfdEvent::TimerFired(BfdTimer::AuthSeqReset) => {
                self.auth_reset_armed = false;
                if let Some(a) = &mut self.auth {
                    a.forget_seq();
                }
            }
            BfdEvent::AdminDown => {
                if self.state != BfdState::AdminDown {
                    self.transition(BfdState::AdminDown, diag::ADMINISTRATIVELY_DOWN, &mut out);
                    out.push(BfdAction::CancelTimer(BfdTimer::Detect));
                }
            }
            BfdEvent::AdminUp => {
                if self.state == BfdState::AdminDown {
                    self.transition(BfdState::Down, diag::NONE, &mut out);
                    if self.may_transmit() {
                        out.push(BfdAction::SetTimer(
                            BfdTimer::Transmit,
                            self.next_tx_delay(),
                        ));
                    }
                }
            }
            BfdEvent::SetIntervals {
                desired_min_tx,
                required_min_rx,
            } => {
                self.config.desired_min_tx = desired_min_tx;
                self.config.required_min_rx = required_min_rx;
                self.apply_intervals(&mut out);
            }
        }
        out
    }

    fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            // P and F are never both set (RFC 5880 §6.8.7).
            poll: self.poll_active && !final_,
            final_,
            control_plane_independent: false,
            auth_present: self.auth.is_some(),
            demand: false,
            multipoint: false,
            detect_mult: self.config.detect_mult.max(1),
            my_discriminator: self.config.local_discriminator,
            your_discriminator: self.remote_discr,
            desired_min_tx: micros(self.desired_min_tx),
            required_min_rx: micros(self.required_min_rx),
            required_min_echo_rx: 0,
        }
    }

    fn transition(&mut self, to: BfdState, diag: u8, out: &mut Vec<BfdAction>) {
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        out.push(BfdAction::StateChanged { from, to, diag });
        // Slow start ends when Up and resumes otherwise (RFC 5880 §6.8.3).
        self.apply_intervals(out);
    }

    fn on_packet(&mut self, p: ControlPacket, out: &mut Vec<BfdAction>) {
        let first_contact = self.remote_discr == 0;
        let tx_before = self.tx_interval();
        self.remote_discr = p.my_discriminator;
        self.remote_state = p.state;
        self.remote_min_rx = from_micros(p.required_min_rx);
        self.remote_desired_min_tx = from_micros(p.desired_min_tx);
        self.remote_detect_mult = p.detect_mult;

        if p.final_ && self.poll_active {
            self.poll_active = false;
            self.tx_basis = self.desired_min_tx;
            self.rx_basis = self.required_min_rx;
        }

        if self.state == BfdState::AdminDown {
            return;
        }

        if p.state == BfdState::AdminDown {
            if self.state != BfdState::Down {
                self.transition(BfdState::Down, diag::NEIGHBOR_SIGNALED_DOWN, out);
            }
        } else {
            match (self.state, p.state) {
                (BfdState::Down, BfdState::Down) => {
                    self.transition(BfdState::Init, diag::NONE, out)
                }
                (BfdState::Down, BfdState::Init) => self.transition(BfdState::Up, diag::NONE, out),
                (BfdState::Init, BfdState::Init | BfdState::Up) => {
                    self.transition(BfdState::Up, diag::NONE, out)
                }
                (BfdState::Up, BfdState::Down) => {
                    self.transition(BfdState::Down, diag::NEIGHBOR_SIGNALED_DOWN, out)
                }
                _ => {}
            }
        }

        if p.poll {
            // RFC 5880 §6.8.7: answer a Poll at once with Final, whatever our role.
            out.push(BfdAction::Send(self.packet(true)));
        }
        // A passive system starts its periodic transmission on first contact. Otherwise, when
        // the interval changed (the peer's Required Min RX, or our own rate once a Poll
        // completed), the packet already scheduled at the old rate is rescheduled: a peer
        // leaving slow start advertises 1 s in Init and 300 ms once Up, and its detection
        // time shrinks at once, so a packet still due ~1 s later would make it time us out.
        let passive_start = first_contact && self.config.passive;
        if self.may_transmit() && (passive_start || self.tx_interval() != tx_before) {
            out.push(BfdAction::SetTimer(
                BfdTimer::Transmit,
                self.next_tx_delay(),
            ));
        }
        let detect = self.detection_time();
        if !detect.is_zero() {
            out.push(BfdAction::SetTimer(BfdTimer::Detect, detect));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
