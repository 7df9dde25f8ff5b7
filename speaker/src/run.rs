//! The speaker's main loop: watch the cluster and the membership, recompute the plan on every
//! change, hand L2 announcements and BGP routes to their runtimes, and report what they do.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use ferrolb_crds::BGPSessionStatus;
use ferrolb_crds::validate;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::cluster::{Cluster, own};
use crate::l2::runtime::{DesiredL2, IfaceSelector, L2Config, L2Runtime, L2Status};
use crate::membership::Membership;
use crate::metrics::{Metrics, PeerLabels};
use crate::plan::{self, Plan, World};
use crate::report::{L2Shown, Visibility};
use crate::sessions::{NodeAddrs, Sessions, desired_sessions};

/// Shortest time between two plans caused by API changes (membership changes are immediate).
const PLAN_INTERVAL: Duration = Duration::from_millis(50);
/// API-driven plans may take at most 1/PLAN_DUTY of the time: with thousands of Services a plan
/// costs milliseconds, and three speakers replanning every 50 ms during a creation burst took a
/// third of a core each, slowing the API server and controller on the same machines.
const PLAN_DUTY: u32 = 10;

#[derive(Clone, Debug)]
pub struct Settings {
    pub node: String,
    pub namespace: String,
    pub lb_class: Option<String>,
    pub member_port: u16,
    pub ignore_interfaces: Vec<String>,
}

/// Membership seeds: every node's speaker address of our family.
fn seeds(nodes: &[Node], v4: bool, port: u16) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = nodes
        .iter()
        .filter_map(|n| {
            let a = NodeAddrs::of(n);
            let ip: Option<IpAddr> = if v4 {
                a.v4.map(IpAddr::V4)
            } else {
                a.v6.map(IpAddr::V6)
            };
            ip.map(|ip| SocketAddr::new(ip, port))
        })
        .collect();
    out.sort();
    out
}

/// This node's L2 share of the plan, in the runtime's terms.
fn desired_l2(plan: &Plan, me: &str) -> DesiredL2 {
    plan.l2_for(me)
        .into_iter()
        .map(|(ip, ifaces)| {
            let sel = if ifaces.is_empty() {
                IfaceSelector::All
            } else {
                IfaceSelector::Named(ifaces.into_iter().collect())
            };
            (ip, sel)
        })
        .collect()
}

pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let me = settings.node.clone();
    let (changed_tx, mut changed) = watch::channel(0u64);
    let cluster = Cluster::watch(&client, &settings.namespace, changed_tx);
    cluster.ready().await;

    // Our address, from our Node object, for the membership protocol.
    let node = loop {
        if let Some(n) = cluster.nodes.get(&ObjectRef::new(&me)) {
            break n;
        }
        tracing::warn!(node = me, "Node object not found yet");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let addrs = NodeAddrs::of(&node);
    let v4 = addrs.v4.is_some();
    let bind_ip: IpAddr = addrs
        .v4
        .map(IpAddr::V4)
        .or(addrs.v6.map(IpAddr::V6))
        .context("the Node has no InternalIP address")?;
    let (seeds_tx, seeds_rx) =
        watch::channel(seeds(&own(&cluster.nodes), v4, settings.member_port));
    let (membership, mut live) = Membership::start(
        me.clone(),
        SocketAddr::new(bind_ip, settings.member_port),
        seeds_rx,
    )
    .await?;

    let (l2_tx, l2_rx) = watch::channel(DesiredL2::new());
    let l2 = L2Runtime::new(
        L2Config {
            ignore_prefixes: settings.ignore_interfaces.clone(),
            ..L2Config::default()
        },
        l2_rx,
    );
    let mut l2_status = l2.status();
    let reassert = l2.reasserter();
    let l2_task = tokio::spawn(l2.run());
    let mut sessions = Sessions::default();
    let mut visibility = Visibility::new(client.clone(), &me);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    ready.store(true, Ordering::Relaxed);
    tracing::info!(node = me, %bind_ip, "speaker ready");

    tokio::pin!(shutdown);
    let mut last_plan = Plan::default();
    let mut last_live: BTreeSet<String> = BTreeSet::new();
    let mut last_plan_at = std::time::Instant::now();
    let mut last_plan_cost = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = changed.changed() => {
                // Coalesce bursts of API events (thousands of Services being created): at most
                // one plan per PLAN_INTERVAL from them. Membership changes (failover) never wait.
                let interval = PLAN_INTERVAL.max(last_plan_cost * PLAN_DUTY);
                let wait = interval.saturating_sub(last_plan_at.elapsed());
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = live.changed() => {}
                    }
                }
            }
            _ = live.changed() => {}
            _ = l2_status.changed() => {}
            _ = tick.tick() => {}
        }
        last_plan_at = std::time::Instant::now();
        let nodes = own(&cluster.nodes);
        seeds_tx.send_if_modified(|s| {
            let new = seeds(&nodes, v4, settings.member_port);
            let changed = *s != new;
            *s = new;
            changed
        });
        let live_set = live.borrow_and_update().clone();
        let config = cluster.snapshot();
        let report = validate::validate(&config);
        let services = cluster.services.state();
        let slices = cluster.slices.state();
        let world = World {
            services: &services,
            slices: &slices,
            nodes: &nodes,
            config: &config,
            report: &report,
            live: &live_set,
            lb_class: settings.lb_class.as_deref(),
        };
        let plan = plan::plan(&world, &me);
        last_plan_cost = last_plan_at.elapsed();
        metrics.plan_seconds.observe(last_plan_cost.as_secs_f64());
        l2_tx.send_if_modified(|cur| {
            let new = desired_l2(&plan, &me);
            let changed = *cur != new;
            *cur = new;
            changed
        });
        if let Some(node) = nodes.iter().find(|n| n.name_any() == me) {
            let (desired, errors) =
                desired_sessions(node, &config, &report, &own(&cluster.secrets), &plan.bgp);
            for (peer, e) in errors {
                tracing::warn!(peer, error = e, "BGP peer not usable on this node");
            }
            sessions.apply(desired);
        }
        // A speaker (re)joined: it may have claimed our addresses while cut off, and the
        // neighbours that heard it point at its MAC. Re-send ours (after the plan above, so a
        // node back from a partition has dropped what it no longer owns).
        let joined = !last_live.is_empty() && live_set.iter().any(|n| !last_live.contains(n));
        if joined && !plan.l2.is_empty() {
            reassert.send_modify(|g| *g += 1);
        }
        last_live = live_set.clone();
        let status = l2_status.borrow_and_update().clone();
        show_l2(&mut visibility, &cluster, &plan, &last_plan, &status, &me);
        show_bgp(
            &mut visibility,
            &sessions,
            &settings.namespace,
            &me,
            &metrics,
        );
        update_metrics(&metrics, &status, live_set.len());
        last_plan = plan;
    }

    // Graceful hand-over: tell the other speakers first (they take over at once), then stop
    // answering and withdraw routes with a Cease.
    tracing::info!("shutting down: leaving, withdrawing");
    let leave = membership.leave();
    drop(l2_tx);
    let (_, _, _) = tokio::join!(leave, sessions.shutdown(), async {
        let _ = tokio::time::timeout(Duration::from_secs(1), l2_task).await;
    });
    Ok(())
}

/// Where each of a Service's addresses is announced, in words.
fn where_announced(plan: &Plan, status: &L2Status, me: &str, ips: &[IpAddr]) -> (bool, String) {
    let mut all = true;
    let parts: Vec<String> = ips
        .iter()
        .map(|ip| match plan.l2.get(ip) {
            Some(a) => {
                let ifaces: Vec<String> = match status.announcing.get(ip) {
                    Some(set) if a.node == me => set.iter().cloned().collect(),
                    _ if a.interfaces.is_empty() => vec!["all interfaces".to_string()],
                    _ => a.interfaces.clone(),
                };
                format!("{ip} from node {} on {}", a.node, ifaces.join(", "))
            }
            None => {
                all = false;
                format!("{ip} not announced (no live speaker selected by an L2Advertisement with a serving endpoint)")
            }
        })
        .collect();
    (all, format!("layer2: {}", parts.join("; ")))
}

/// The node announcing a Service's primary address writes where all its addresses are
/// announced; if nobody announces it any more, the node that did says so.
fn show_l2(
    v: &mut Visibility,
    cluster: &Cluster,
    plan: &Plan,
    last: &Plan,
    status: &L2Status,
    me: &str,
) {
    for svc in cluster.services.state() {
        let ips = ferrolb_crds::service::ingress_ips(&svc);
        let Some(primary) = ips.first() else { continue };
        let mine_now = plan.l2.get(primary).is_some_and(|a| a.node == me);
        let mine_before = last.l2.get(primary).is_some_and(|a| a.node == me);
        if mine_now && status.announcing.contains_key(primary) {
            let (ok, message) = where_announced(plan, status, me, &ips);
            let reason = if ok { "Announced" } else { "PartlyAnnounced" };
            v.l2(
                &svc,
                L2Shown {
                    announced: ok,
                    reason,
                    message,
                },
            );
        } else if mine_before && !plan.l2.contains_key(primary) {
            let (_, message) = where_announced(plan, status, me, &ips);
            v.l2(
                &svc,
                L2Shown {
                    announced: false,
                    reason: "NotAnnounced",
                    message,
                },
            );
        }
    }
}

fn show_bgp(v: &mut Visibility, sessions: &Sessions, ns: &str, me: &str, m: &Metrics) {
    let statuses: BTreeMap<String, _> = sessions.statuses();
    for (peer, (rx, bfd)) in &statuses {
        let s = rx.borrow().clone();
        let labels = PeerLabels { peer: peer.clone() };
        let up = s.state == crate::bgp::State::Established;
        m.bgp_session_up.get_or_create(&labels).set(i64::from(up));
        m.bgp_updates
            .get_or_create(&labels)
            .set(i64::try_from(s.updates_sent).unwrap_or(i64::MAX));
        m.bgp_prefixes
            .get_or_create(&labels)
            .set(i64::try_from(s.prefixes_sent).unwrap_or(i64::MAX));
        v.bgp(
            ns,
            peer,
            BGPSessionStatus {
                node: me.to_string(),
                state: format!("{:?}", s.state),
                bfd_state: bfd.map(|b| format!("{b:?}")),
                prefixes_sent: i64::try_from(s.prefixes_sent).unwrap_or(i64::MAX),
                last_error: s.last_error.clone(),
            },
        );
    }
    let _: BTreeSet<&String> = statuses.keys().collect();
}

fn update_metrics(m: &Metrics, s: &L2Status, members: usize) {
    let c = &s.counters;
    let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    m.l2_requests_received.set(g(c.requests_received));
    m.l2_responses_sent.set(g(c.replies_sent));
    m.l2_gratuitous_sent.set(g(c.gratuitous_sent));
    m.l2_malformed_dropped.set(g(c.malformed_dropped));
    m.announced.set(s.announcing.len() as i64);
    m.members.set(members as i64);
}
