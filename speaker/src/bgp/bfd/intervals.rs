//! The session's timing (RFC 5880 §6.8.2–§6.8.4, §6.8.7): slow start, interval changes
//! through a Poll sequence, the jittered transmit delay and the detection time.

use std::time::Duration;

use super::{BfdAction, BfdSession, BfdState, BfdTimer, SLOW_START_TX};

impl BfdSession {
    /// Interval between our periodic packets before jitter.
    pub fn tx_interval(&self) -> Duration {
        self.tx_basis.max(self.remote_min_rx)
    }

    /// How long without packets before we declare the peer down (asynchronous mode).
    pub fn detection_time(&self) -> Duration {
        self.rx_basis
            .max(self.remote_desired_min_tx)
            .saturating_mul(self.remote_detect_mult.into())
    }

    pub(super) fn may_transmit(&self) -> bool {
        // RFC 5880 §6.8.7: nothing periodic if the peer asked for no packets, and a passive
        // system waits until it has heard from the peer.
        !self.remote_min_rx.is_zero() && (!self.config.passive || self.remote_discr != 0)
    }

    /// Sends a packet now, if we may transmit at all, and schedules the next periodic one.
    pub(super) fn transmit(&mut self, out: &mut Vec<BfdAction>) {
        if self.may_transmit() {
            out.push(BfdAction::Send(self.packet(false)));
            out.push(BfdAction::SetTimer(
                BfdTimer::Transmit,
                self.next_tx_delay(),
            ));
        }
    }

    /// Jittered transmit delay: 75–100% of the interval, 75–90% with a detect mult of 1.
    pub(super) fn next_tx_delay(&mut self) -> Duration {
        // xorshift64: cheap, deterministic in tests, good enough for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let max_pct = if self.config.detect_mult == 1 {
            90
        } else {
            100
        };
        let pct = 75 + (self.rng % (max_pct - 75 + 1));
        let us = self.tx_interval().as_micros() * u128::from(pct) / 100;
        Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    /// Recomputes the advertised intervals; a change while Up starts a Poll sequence.
    pub(super) fn apply_intervals(&mut self, out: &mut Vec<BfdAction>) {
        let desired = if self.state == BfdState::Up {
            self.config.desired_min_tx
        } else {
            self.config.desired_min_tx.max(SLOW_START_TX)
        };
        let required = self.config.required_min_rx;
        let changed = desired != self.desired_min_tx || required != self.required_min_rx;
        if !changed {
            return;
        }
        let old_desired = self.desired_min_tx;
        self.desired_min_tx = desired;
        self.required_min_rx = required;
        if self.state == BfdState::Up {
            // Faster transmission and a longer detection time are safe at once; the
            // opposite waits for the peer's Final.
            if desired < old_desired {
                self.tx_basis = desired;
            }
            if required > self.rx_basis {
                self.rx_basis = required;
            }
            self.poll_active = true;
            // Send the Poll now rather than waiting for the next periodic packet, and restart
            // the periodic timer: the peer shortens its detection time as soon as it sees a
            // smaller interval, so a packet still scheduled at the old rate would be too late.
            self.transmit(out);
        } else {
            self.tx_basis = desired;
            self.rx_basis = required;
        }
    }
}
