//! What the membership counts (datagrams in and out, rejections, restarts): atomics the core and
//! the driver bump, and the snapshot the speaker exports as metrics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::reject::{RejectCounters, Rejected};

/// Datagram and event counters, shared with the driver thread.
#[derive(Debug, Default)]
pub struct Counters {
    pub(super) received: AtomicU64,
    pub(super) rejected: RejectCounters,
    pub(super) sent: AtomicU64,
    pub(super) send_errors: AtomicU64,
    pub(super) unroutable: AtomicU64,
    pub(super) restarts: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams read from the socket.
    pub datagrams_received: u64,
    /// Datagrams (or, for [`super::Reason::UnknownMember`], member updates in
    /// them) dropped, per reason.
    pub rejected: Rejected,
    /// Datagrams handed to the socket.
    pub datagrams_sent: u64,
    /// Datagrams the socket refused (no route, buffer full, ...).
    pub send_errors: u64,
    /// Datagrams foca wanted to send to an address that is not a known node
    /// (never sent).
    pub unroutable: u64,
    /// Times we started afresh under a renewed identity after being cut off.
    pub restarts: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            datagrams_received: self.received.load(Relaxed),
            rejected: self.rejected.snapshot(),
            datagrams_sent: self.sent.load(Relaxed),
            send_errors: self.send_errors.load(Relaxed),
            unroutable: self.unroutable.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
        }
    }

    pub fn send_failed(&self) {
        self.send_errors.fetch_add(1, Relaxed);
    }
}
