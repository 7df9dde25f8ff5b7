//! Arbitrary bytes as a received Ethernet frame: the parser must never
//! panic, and whatever parses goes through the announcer as if this node
//! owned the requested IP, so the reply and frame-building paths run too.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ferrolb_speaker::l2::announcer::{self, Announcer};
use ferrolb_speaker::l2::frame::{self, Inbound, MacAddr};
use libfuzzer_sys::fuzz_target;

const IFACE: &str = "fuzz0";
const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

fuzz_target!(|data: &[u8]| {
    let parsed = frame::parse(data);
    let now = Instant::now();
    let mut announcer = Announcer::new();
    let mut actions = Vec::new();

    let mut expect_reply = false;
    if let Ok(inbound) = &parsed {
        let (target, is_announcement) = match *inbound {
            Inbound::ArpRequest {
                sender_ip,
                target_ip,
                ..
            } => (IpAddr::V4(target_ip), sender_ip == target_ip),
            Inbound::NeighborSolicitation { target, .. } => (IpAddr::V6(target), false),
            // Claims (replies, advertisements) are never answered.
            Inbound::ArpReply { sender_ip, .. } => (IpAddr::V4(sender_ip), true),
            Inbound::NeighborAdvertisement { target, .. } => (IpAddr::V6(target), true),
        };
        let desired = BTreeMap::from([(target, BTreeSet::from([IFACE.to_owned()]))]);
        actions.extend(announcer.set_desired(&desired, now));
        expect_reply = announcer::is_announceable(target) && !is_announcement;
    }

    let reply = announcer.on_frame(IFACE, data);
    assert_eq!(
        reply.is_some(),
        expect_reply,
        "reply iff we own a requested IP"
    );
    let counters = announcer.counters();
    assert_eq!(counters.frames_received, 1);
    assert_eq!(
        counters.malformed_dropped,
        u64::from(parsed.is_err_and(|r| r.is_malformed()))
    );

    actions.extend(reply);
    actions.extend(announcer.on_tick(now + Duration::from_secs(3)));

    // Everything we build must be a well-formed frame of our own parser's
    // view: requests parse, replies and advertisements are merely ignored.
    for action in &actions {
        for built in action.frames(OUR_MAC) {
            assert!(!built.is_empty());
            if let Err(reason) = frame::parse(&built) {
                assert!(!reason.is_malformed(), "built a malformed frame: {reason}");
            }
        }
    }
});
