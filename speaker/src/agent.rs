//! The speaker's main loop: watch the cluster and the membership, recompute the plan on every
//! change, hand L2 announcements and BGP routes to their runtimes, and report what they do.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use ferrolb_crds::validate;
use ferrolb_shell::watch::own;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::departure::{self, OnShutdown};
use crate::health::{Change, Health, Runtime};
use crate::l2::runtime::probe;
use crate::l2::{DesiredL2, IfaceSelector, L2Config, L2Error, L2Runtime, L2Status};
use crate::membership::{Authentication, Membership, Seed};
use crate::metrics::{Metrics, RuntimeLabels};
use crate::plan::{self, Plan, World};
use crate::sessions::{NodeAddrs, Sessions, desired_sessions};
use crate::visibility::StatusWriter;
use ferrolb_shell::backoff::Backoff;

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
    /// How membership datagrams are authenticated (keys read at start).
    pub membership_auth: Authentication,
    pub ignore_interfaces: Vec<String>,
    /// What BGP routes become on SIGTERM: kept through a planned restart or withdrawn.
    pub on_shutdown: OnShutdown,
}

/// Membership seeds: every node's name and speaker address of our family (the membership only
/// hears these addresses, under these names).
fn seeds(nodes: &[Node], v4: bool, port: u16) -> Vec<Seed> {
    let mut out: Vec<Seed> = nodes
        .iter()
        .filter_map(|n| {
            let a = NodeAddrs::of(n);
            let ip: Option<IpAddr> = if v4 {
                a.v4.map(IpAddr::V4)
            } else {
                a.v6.map(IpAddr::V6)
            };
            ip.map(|ip| Seed::new(n.name_any(), SocketAddr::new(ip, port)))
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

/// First retry of an L2 runtime that cannot work, and the cap. A missing capability does not come
/// back by itself, so retries are rare; each costs one socket() call.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The running L2 runtime, as the main loop sees it.
struct L2Task {
    task: tokio::task::JoinHandle<Result<(), L2Error>>,
    status: watch::Receiver<L2Status>,
    /// False once the runtime dropped its status sender (it is ending).
    status_open: bool,
    reassert: watch::Sender<u64>,
    /// Addresses a FerroLB node announced before: taken over without a conflict probe.
    announced_before: watch::Sender<BTreeSet<std::net::IpAddr>>,
    started: tokio::time::Instant,
}

/// Starts the L2 runtime if this process can open packet sockets at all.
fn start_l2(config: &L2Config, desired: &watch::Sender<DesiredL2>) -> Result<L2Task, L2Error> {
    probe()?;
    let runtime = L2Runtime::new(config.clone(), desired.subscribe());
    let status = runtime.status();
    let reassert = runtime.reasserter();
    let announced_before = runtime.announced_before();
    Ok(L2Task {
        task: tokio::spawn(runtime.run()),
        status,
        status_open: true,
        reassert,
        announced_before,
        started: tokio::time::Instant::now(),
    })
}

enum L2Event {
    Status,
    StatusClosed,
    Ended(String),
}

/// The next thing the L2 runtime did (never returns while it is not running).
async fn l2_event(l2: &mut Option<L2Task>) -> L2Event {
    let Some(t) = l2 else {
        return std::future::pending().await;
    };
    tokio::select! {
        r = &mut t.task => L2Event::Ended(match r {
            Ok(Ok(())) => "the L2 runtime ended".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) if e.is_panic() => format!("the L2 runtime panicked: {e}"),
            Err(e) => format!("the L2 runtime was cancelled: {e}"),
        }),
        r = t.status.changed(), if t.status_open => match r {
            Ok(()) => L2Event::Status,
            Err(_) => L2Event::StatusClosed,
        },
    }
}

/// This speaker in the membership: only while its L2 runtime works, so that a node that cannot
/// answer ARP/NDP is never elected (the others take its addresses over).
struct Joined {
    membership: Membership,
    live: watch::Receiver<BTreeSet<String>>,
    /// False if the membership driver ended (it holds the sender).
    open: bool,
}

/// The next change of the live set (never returns while not a member).
async fn live_changed(joined: &mut Option<Joined>) -> bool {
    match joined {
        Some(j) if j.open => j.live.changed().await.is_ok(),
        _ => std::future::pending().await,
    }
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
    cluster.export_api_reachable(metrics.api_reachable.clone());
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
    let join = || async {
        let (membership, live) = Membership::start(
            me.clone(),
            SocketAddr::new(bind_ip, settings.member_port),
            seeds_rx.clone(),
            settings.membership_auth.clone(),
        )
        .await?;
        anyhow::Ok(Joined {
            membership,
            live,
            open: true,
        })
    };

    let mut health = Health::default();
    // Not ready while the watches cannot reach the API server (the plan would be stale); the
    // cluster module logs the outage.
    let mut api_reachable = cluster.api_reachable();
    let mut api_open = true;
    let runtime_up = |rt: Runtime, up: bool| {
        metrics
            .runtime_up
            .get_or_create(&RuntimeLabels {
                runtime: rt.label().into(),
            })
            .set(i64::from(up));
    };
    let (l2_tx, _) = watch::channel(DesiredL2::new());
    let l2_config = L2Config {
        ignore_prefixes: settings.ignore_interfaces.clone(),
        ..L2Config::default()
    };
    let mut l2_backoff = Backoff::exact(RETRY_MIN, RETRY_MAX);
    let mut l2_retry_at: Option<tokio::time::Instant> = None;
    let mut joined: Option<Joined> = None;
    let mut l2 = match start_l2(&l2_config, &l2_tx) {
        Ok(t) => {
            joined = Some(join().await?);
            Some(t)
        }
        Err(e) => {
            l2_fails(
                &mut health,
                &mut joined,
                &mut l2_backoff,
                &mut l2_retry_at,
                e.to_string(),
            )
            .await;
            None
        }
    };
    runtime_up(Runtime::L2, l2.is_some());
    runtime_up(Runtime::Bgp, true);
    let mut sessions = Sessions::new({
        // Judged from the cache at SIGTERM: no request that could hang while the kubelet waits.
        let (nodes, reachable, me, mode) = (
            cluster.nodes.clone(),
            cluster.api_reachable(),
            me.clone(),
            settings.on_shutdown,
        );
        Arc::new(move || {
            let node = nodes.get(&ObjectRef::new(&me));
            departure::decide(mode, node.as_deref(), *reachable.borrow())
        })
    });
    let mut status_writer = StatusWriter::new(client.clone(), &me);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    ready.store(health.ready(), Ordering::Relaxed);
    tracing::info!(node = me, %bind_ip, ready = health.ready(), "speaker started");

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
                        _ = live_changed(&mut joined) => {}
                    }
                }
            }
            open = live_changed(&mut joined) => {
                if !open && let Some(j) = joined.as_mut() {
                    tracing::error!("the membership driver ended; this node's live set is frozen");
                    j.open = false;
                }
            }
            ev = l2_event(&mut l2) => match ev {
                L2Event::Status => {}
                // The runtime is ending: its task says why at once.
                L2Event::StatusClosed => {
                    if let Some(t) = l2.as_mut() {
                        t.status_open = false;
                    }
                }
                L2Event::Ended(cause) => {
                    if l2.take().is_some_and(|t| t.started.elapsed() > RETRY_MAX) {
                        // It worked for a while: retry soon. (One that keeps failing at once
                        // backs off up to RETRY_MAX instead of rejoining every second.)
                        l2_backoff.reset();
                    }
                    l2_fails(&mut health, &mut joined, &mut l2_backoff, &mut l2_retry_at, cause).await;
                    runtime_up(Runtime::L2, false);
                }
            },
            _ = tokio::time::sleep_until(l2_retry_at.unwrap_or_else(tokio::time::Instant::now)),
                if l2_retry_at.is_some() => {
                match start_l2(&l2_config, &l2_tx) {
                    Ok(t) => {
                        l2 = Some(t);
                        l2_retry_at = None;
                        health.set(Runtime::L2, Ok(()));
                        tracing::info!("the L2 runtime works again: rejoining the membership");
                        joined = Some(join().await?);
                        runtime_up(Runtime::L2, true);
                    }
                    Err(e) => {
                        l2_fails(&mut health, &mut joined, &mut l2_backoff, &mut l2_retry_at, e.to_string()).await;
                    }
                }
            }
            r = api_reachable.changed(), if api_open => api_open = r.is_ok(),
            _ = tick.tick() => {}
        }
        health.set_api_reachable(*api_reachable.borrow_and_update());
        last_plan_at = std::time::Instant::now();
        let nodes = own(&cluster.nodes);
        seeds_tx.send_if_modified(|s| {
            let new = seeds(&nodes, v4, settings.member_port);
            let changed = *s != new;
            *s = new;
            changed
        });
        // Out of the membership, the live set is empty: this node wins no L2 election.
        let live_set = match joined.as_mut() {
            Some(j) => j.live.borrow_and_update().clone(),
            None => BTreeSet::new(),
        };
        let config = cluster.config.snapshot();
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
        let desired = desired_l2(&plan, &me);
        if let Some(t) = &l2 {
            let known = crate::visibility::announced_before(&services);
            t.announced_before.send_if_modified(|cur| {
                let changed = *cur != known;
                *cur = known;
                changed
            });
        }
        l2_tx.send_if_modified(|cur| {
            let changed = *cur != desired;
            *cur = desired.clone();
            changed
        });
        let mut want_bfd = BTreeSet::new();
        if let Some(node) = nodes.iter().find(|n| n.name_any() == me) {
            let (desired, errors) = desired_sessions(
                node,
                &config,
                &report,
                &own(&cluster.config.secrets),
                &plan.bgp,
            );
            sessions.report_unusable(errors);
            want_bfd = desired
                .iter()
                .filter(|(_, d)| d.bfd.is_some())
                .map(|(k, _)| k.clone())
                .collect();
            sessions.apply(desired);
        }
        // A speaker (re)joined: it may have claimed our addresses while cut off, and the
        // neighbours that heard it point at its MAC. Re-send ours (after the plan above, so a
        // node back from a partition has dropped what it no longer owns).
        let joined_now = !last_live.is_empty() && live_set.iter().any(|n| !last_live.contains(n));
        if joined_now
            && !plan.l2.is_empty()
            && let Some(t) = &l2
        {
            t.reassert.send_modify(|g| *g += 1);
        }
        last_live = live_set.clone();
        let status = match l2.as_mut() {
            Some(t) => t.status.borrow_and_update().clone(),
            None => L2Status::default(),
        };
        // Out of the membership this node's plan says nobody announces anything: writing that
        // would overwrite what the nodes that took over write.
        if joined.is_some() {
            status_writer.show_l2(&cluster, &plan, &last_plan, &status, &desired, &me);
        }
        let broken = status_writer.show_bgp(
            &sessions,
            &cluster,
            &want_bfd,
            &settings.namespace,
            &me,
            &metrics,
        );
        match health.set(
            Runtime::Bgp,
            if broken.is_empty() {
                Ok(())
            } else {
                Err(broken.join("; "))
            },
        ) {
            Change::None => {}
            Change::Up => {
                tracing::info!("the BGP runtime works again");
                runtime_up(Runtime::Bgp, true);
            }
            Change::Down(cause) => {
                tracing::error!(
                    cause,
                    "the BGP runtime cannot work: /readyz fails until it does"
                );
                runtime_up(Runtime::Bgp, false);
            }
        }
        ready.store(health.ready(), Ordering::Relaxed);
        update_metrics(&metrics, &status, live_set.len());
        if let Some(j) = &joined {
            metrics.record_membership(&j.membership.stats());
        }
        last_plan = plan;
    }

    // Graceful hand-over: tell the other speakers first (they take over at once), then stop
    // answering, and end the BGP sessions as the departure rule says (withdraw with a Cease, or
    // keep the routes through a planned restart).
    tracing::info!("shutting down: leaving the membership, stopping BGP sessions");
    ready.store(false, Ordering::Relaxed);
    let leave = async {
        if let Some(j) = joined {
            j.membership.leave().await;
        }
    };
    drop(l2_tx);
    tokio::join!(leave, sessions.shutdown(), async {
        if let Some(t) = l2 {
            let _ = tokio::time::timeout(Duration::from_secs(1), t.task).await;
        }
    });
    Ok(())
}

/// The L2 runtime cannot work: say why (once per cause), leave the membership so that the other
/// speakers elect another node for this node's addresses at once (a graceful leave, not a
/// failure detection), and schedule a retry.
async fn l2_fails(
    health: &mut Health,
    joined: &mut Option<Joined>,
    backoff: &mut Backoff,
    retry_at: &mut Option<tokio::time::Instant>,
    cause: String,
) {
    let delay = backoff.next_delay();
    if let Change::Down(cause) = health.set(Runtime::L2, Err(cause)) {
        tracing::error!(
            cause,
            "the L2 runtime cannot work: out of the membership (other nodes announce this node's \
             addresses), /readyz fails; retrying with backoff up to {RETRY_MAX:?}"
        );
    } else {
        tracing::debug!(retry_in = ?delay, "the L2 runtime still cannot work");
    }
    if let Some(j) = joined.take() {
        j.membership.leave().await;
    }
    *retry_at = Some(tokio::time::Instant::now() + delay);
}

fn update_metrics(m: &Metrics, s: &L2Status, members: usize) {
    let c = &s.counters;
    let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    m.l2_requests_received.set(g(c.requests_received));
    m.l2_responses_sent.set(g(c.replies_sent));
    m.l2_gratuitous_sent.set(g(c.gratuitous_sent));
    m.l2_malformed_dropped.set(g(c.malformed_dropped));
    m.announced.set(s.announcing.len() as i64);
    m.record_conflicts(&s.conflict_counts);
    m.members.set(members as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(
        run: impl Future<Output = Result<(), L2Error>> + Send + 'static,
    ) -> (Option<L2Task>, watch::Sender<L2Status>) {
        let (status_tx, status) = watch::channel(L2Status::default());
        let t = L2Task {
            task: tokio::spawn(run),
            status,
            status_open: true,
            reassert: watch::channel(0).0,
            announced_before: watch::channel(BTreeSet::new()).0,
            started: tokio::time::Instant::now(),
        };
        (Some(t), status_tx)
    }

    /// What the main loop does with the events, until the runtime is reported ended.
    async fn until_ended(l2: &mut Option<L2Task>) -> (String, usize) {
        let mut events = 0;
        loop {
            events += 1;
            assert!(
                events < 10,
                "the closed status channel is polled again and again"
            );
            match l2_event(l2).await {
                L2Event::Status => {}
                L2Event::StatusClosed => l2.as_mut().unwrap().status_open = false,
                L2Event::Ended(cause) => return (cause, events),
            }
        }
    }

    #[tokio::test]
    async fn an_ended_l2_runtime_is_reported_with_its_cause_and_not_polled_again() {
        let (mut l2, status) = task(async {
            Err(L2Error::Permission {
                iface: "eth0".into(),
                source: std::io::ErrorKind::PermissionDenied.into(),
            })
        });
        drop(status);
        let (cause, events) = until_ended(&mut l2).await;
        assert!(cause.contains("CAP_NET_RAW"), "{cause}");
        assert!(events <= 2);

        let (mut l2, _status) = task(async { panic!("boom") });
        let (cause, _) = until_ended(&mut l2).await;
        assert!(cause.contains("panicked"), "{cause}");

        // Not running: nothing happens (the retry timer takes over).
        let mut none: Option<L2Task> = None;
        let idle = tokio::time::timeout(Duration::from_millis(50), l2_event(&mut none)).await;
        assert!(idle.is_err());
    }
}
