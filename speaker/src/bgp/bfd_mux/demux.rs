//! The receive side: one socket per local address, its packets delivered to their session by
//! Your Discriminator, or by source address while that is 0.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::drops::{DropLabels, dropped_packets};
use crate::bgp::bfd::PACKET_LEN;
use crate::bgp::net;

/// Where a receive socket delivers packets.
#[derive(Default)]
pub(super) struct Table {
    pub(super) by_discriminator: HashMap<u32, Inbox>,
    pub(super) by_peer: HashMap<IpAddr, u32>,
}

pub(super) struct Inbox {
    pub(super) peer: IpAddr,
    pub(super) tx: mpsc::Sender<Inbound>,
}

/// A received packet on its way to its session.
pub(super) struct Inbound {
    pub(super) bytes: Vec<u8>,
    pub(super) ttl: Option<u8>,
}

/// Which session a received packet belongs to: by Your Discriminator, or by source address
/// while it is 0. `None`: nobody's (too short, unknown discriminator, or another peer's).
pub(super) fn recipient(
    table: &Table,
    bytes: &[u8],
    from: IpAddr,
) -> Option<mpsc::Sender<Inbound>> {
    if bytes.len() < PACKET_LEN {
        return None;
    }
    let your = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let disc = if your != 0 {
        your
    } else {
        *table.by_peer.get(&from)?
    };
    let inbox = table.by_discriminator.get(&disc)?;
    (inbox.peer == from).then(|| inbox.tx.clone())
}

/// The receive loop of one local address.
pub(super) async fn receive(socket: UdpSocket, table: Arc<Mutex<Table>>, local: IpAddr) {
    let mut buf = [0u8; 128];
    loop {
        match net::recv_with_ttl(&socket, &mut buf).await {
            Ok((n, from, ttl)) => {
                // A poisoned table is still a consistent map: the receive loop keeps going.
                let to = recipient(
                    &table.lock().unwrap_or_else(PoisonError::into_inner),
                    &buf[..n],
                    from.ip(),
                );
                match to {
                    Some(tx) => {
                        let _ = tx.try_send(Inbound {
                            bytes: buf[..n].to_vec(),
                            ttl,
                        });
                    }
                    None => {
                        dropped_packets()
                            .get_or_create(&DropLabels {
                                peer: String::new(),
                                reason: "no_session",
                            })
                            .inc();
                        tracing::trace!(%local, %from, "BFD packet for no session of ours dropped");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%local, error = %e, "BFD receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
