//! The tokio shell around [`Core`]: one UDP socket, one sleep until the next
//! deadline, the seed watch and a stop signal. No decisions live here.
//!
//! It runs on a dedicated thread with its own current-thread runtime so that
//! probe answers and timers are never delayed by the rest of the speaker (a
//! burst of Kubernetes events, a slow reconcile): at a 100 ms probe period a
//! starved membership task would itself look dead to its peers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use super::config::MAX_DATAGRAM;
use super::core::Core;
use super::keys::{KeyFile, RELOAD_EVERY, Reload};
use super::stats::Counters;
use super::vet::Seed;

/// The leave message is sent twice, this far apart, in case one is lost.
pub const LEAVE_REPEAT_AFTER: Duration = Duration::from_millis(20);

/// Asks the driver to leave; it answers on the enclosed sender when done.
pub type StopRequest = oneshot::Sender<()>;

pub async fn run(
    mut core: Core,
    socket: UdpSocket,
    mut seeds: watch::Receiver<Vec<Seed>>,
    live_tx: watch::Sender<BTreeSet<String>>,
    mut stop: oneshot::Receiver<StopRequest>,
    counters: Arc<Counters>,
    mut key_file: Option<KeyFile>,
) {
    let mut reload = tokio::time::interval(RELOAD_EVERY);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One byte more than we ever send: a longer datagram is truncated into
    // something the core sees as oversized and drops.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut seeds_open = true;
    let initial = seeds.borrow_and_update().clone();
    core.set_seeds(Instant::now(), &initial);

    loop {
        flush(&mut core, &socket, &counters);
        live_tx.send_if_modified(|live| {
            let changed = live != core.live();
            if changed {
                live.clone_from(core.live());
            }
            changed
        });

        let deadline = tokio::time::Instant::from_std(core.next_deadline());
        tokio::select! {
            // Timers before datagrams: a flood must not delay probes.
            biased;
            request = &mut stop => {
                // Err: the Membership was dropped without leave(); leave anyway,
                // it is what a stopping speaker wants.
                leave(&mut core, &socket, &counters).await;
                if let Ok(done) = request {
                    let _ = done.send(());
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => core.on_tick(Instant::now()),
            _ = reload.tick(), if key_file.is_some() => {
                if let Some(file) = key_file.as_mut() {
                    reload_keys(&mut core, file);
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => {
                    if let Err(why) = core.handle_datagram(Instant::now(), from, &buf[..len]) {
                        debug!(%from, len, ?why, "dropped datagram");
                    }
                }
                Err(err) => {
                    // UDP receive errors are transient (e.g. ICMP reports);
                    // pause briefly so a persistent one cannot spin.
                    warn!(error = %err, "membership socket receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            changed = seeds.changed(), if seeds_open => match changed {
                Ok(()) => {
                    let list = seeds.borrow_and_update().clone();
                    core.set_seeds(Instant::now(), &list);
                }
                // Publisher gone: keep knocking on the last known seeds.
                Err(_) => seeds_open = false,
            },
        }
    }
}

/// Picks up a rotated key file (a mounted Secret changes in place).
fn reload_keys(core: &mut Core, file: &mut KeyFile) {
    match file.reload() {
        Reload::Unchanged => {}
        Reload::Changed(ring) => {
            info!(
                file = %file.path().display(),
                signing = %ring.signing().id,
                accepted = ?ring.ids(),
                "membership keys changed"
            );
            core.set_keys(ring);
        }
        Reload::Failed(problem) => error!(
            %problem,
            "membership key file unusable: keeping the keys in use until it is fixed"
        ),
    }
}

async fn leave(core: &mut Core, socket: &UdpSocket, counters: &Counters) {
    core.leave(Instant::now());
    flush(core, socket, counters);
    tokio::time::sleep(LEAVE_REPEAT_AFTER).await;
    core.leave(Instant::now());
    flush(core, socket, counters);
}

/// Sends queued datagrams without waiting: UDP is lossy anyway and SWIM
/// tolerates loss, whereas a blocked send would delay every timer.
fn flush(core: &mut Core, socket: &UdpSocket, counters: &Counters) {
    for (to, datagram) in core.take_outbox() {
        if let Err(err) = socket.try_send_to(&datagram, to) {
            counters.send_failed();
            debug!(%to, error = %err, "membership send failed");
        }
    }
}
