//! Feeds arbitrary bytes to the BGP message decoder, then to an Established session FSM, and
//! the BFD packet decoder. Nothing here may panic; decoded messages must re-encode to bytes
//! that decode to the same message.
#![no_main]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ferrolb_speaker::bgp::bfd::{BfdConfig, BfdSession};
use ferrolb_speaker::bgp::codec::{self, CodecOptions, Message, Open};
use ferrolb_speaker::bgp::fsm::{Event, PeerAsn, PeerConfig, Session};
use ferrolb_speaker::bgp::prefix::Family;
use libfuzzer_sys::fuzz_target;

fn established() -> Session {
    let mut s = Session::new(PeerConfig::new(
        64512,
        PeerAsn::External,
        Ipv4Addr::new(198, 18, 0, 1),
    ));
    s.handle(Event::Start);
    s.handle(Event::TcpConnected);
    let caps = Family::ALL
        .iter()
        .map(|f| {
            let (afi, safi) = f.afi_safi();
            codec::Capability::Multiprotocol { afi, safi }
        })
        .collect();
    s.handle(Event::Message(Message::Open(Open::new(
        64513,
        90,
        Ipv4Addr::new(198, 18, 0, 2),
        caps,
    ))));
    s.handle(Event::Message(Message::Keepalive));
    s.handle(Event::RoutesChanged(BTreeSet::new()));
    s
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks 2- or 4-octet AS mode; the rest is a stream of messages.
    let (mode, mut rest) = match data.split_first() {
        Some((m, r)) => (*m, r),
        None => return,
    };
    let opts = CodecOptions {
        four_octet_as: mode & 1 == 0,
    };
    let mut session = established();
    loop {
        match codec::decode_frame(rest, &opts) {
            Ok(Some((msg, used))) => {
                if let Ok(bytes) = msg.encode(&opts) {
                    let again = Message::decode(&bytes, &opts).expect("re-encoded message decodes");
                    // RFC 7606 soft errors are not re-encoded, so compare without them.
                    let strip = |m: Message| match m {
                        Message::Update(mut u) => {
                            u.errors.clear();
                            Message::Update(u)
                        }
                        other => other,
                    };
                    if let (Message::Update(a), Message::Update(_)) = (&msg, &again) {
                        if a.errors.is_empty() {
                            assert_eq!(strip(again), strip(msg.clone()));
                        }
                    } else {
                        assert_eq!(again, msg);
                    }
                }
                session.handle(Event::Message(msg));
                rest = &rest[used..];
            }
            Ok(None) => break,
            Err(e) => {
                session.handle(Event::Malformed(e));
                break;
            }
        }
    }
    let _ = Message::decode(data, &opts);
    let mut bfd = BfdSession::new(BfdConfig::new(1));
    let _ = bfd.receive(data, Some(255));
});
