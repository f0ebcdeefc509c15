//! diem's supervision tree.
//!
//! ```text
//! diem                one_for_one, intensity 10 per 60 s
//! ├── store           one_for_one, intensity 5 per 10 s     (supervisor)
//! │   ├── postgres    the pool actor                         shutdown 5 s
//! │   └── corpus      the snapshot keeper (LISTEN/NOTIFY)     shutdown 2 s
//! ├── limiter         the Redis limiter actor                shutdown 2 s
//! ├── metrics         gauge sampling, histogram upkeep       shutdown 1 s
//! ├── load            every actor's load, stuck handlers      shutdown 1 s
//! ├── control         the control socket                     shutdown 2 s
//! ├── upgrade         live upgrade: starts the new process     shutdown 1 s
//! ├── cluster         rest_for_one, 5 per 10 s (supervisor; with [cluster] enabled)
//! │   ├── server      the ractor_cluster node server           shutdown 2 s
//! │   ├── tls         the cluster port with TLS (with cluster TLS) shutdown 1 s
//! │   ├── endpoint    this node's endpoint for the others      shutdown 1 s
//! │   ├── membership  member table, failure detector           shutdown 1 s
//! │   └── peers       simple_one_for_one: a peer actor per member address
//! ├── workers         simple_one_for_one, intensity 1000 per 5 s (supervisor)
//! │   ├── 1 … N       request workers                        shutdown 5 s
//! ├── listener        accepts connections                    shutdown 5 s
//! ├── observer        builds the observer's frames (only while watched) shutdown 1 s
//! ├── admin           the admin listener (the observer page)  shutdown 1 s
//! └── watchdog        systemd's watchdog and status (under systemd) shutdown 1 s
//! ```
//!
//! Why each choice is in docs/architecture.md; in short: the children of
//! the root do not depend on each other at start (each reads what it needs
//! from the [`Node`] and copes with its absence), so one_for_one; the
//! listener is started last and stopped first, so no request arrives
//! before the workers exist or after they are gone; the worker pool
//! tolerates crash storms (a panic is one request's problem) but gives up
//! on a systemic failure; if the root gives up, the process exits non-zero.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use ractor::{Actor, ActorProcessingErr};
use supervisors::{ChildSpec, Shutdown, StartCtx, Strategy, SupervisorFlags, SupervisorSpec, TaskResult};

use crate::admin::listener as admin_listener;
use crate::cluster::endpoint::ClusterEndpoint;
use crate::cluster::endpoint_msg::endpoint_name;
use crate::cluster::membership::Membership;
use crate::cluster::peer::{Peer, PeerAddr};
use crate::cluster::server::ClusterServer;
use crate::cluster::tls_listener;
use crate::control::socket as control_socket;
use crate::http::listener;
use crate::limiter::redis_limiter::RedisLimiter;
use crate::load::sampler::LoadSampler;
use crate::metrics_actor;
use crate::node::Node;
use crate::observer::publisher;
use crate::store::corpus::Corpus;
use crate::store::postgres_pool::PostgresPool;
use crate::tree_paths::{child, cluster, store, template, EXCLUSIVE};
use crate::upgrade::upgrader::Upgrader;
use crate::watchdog;
use crate::workers::worker::Worker;

fn ms(n: u64) -> Shutdown {
    Shutdown::Timeout(Duration::from_millis(n))
}

/// A permanent worker child running the actor `make` builds.
fn actor<A>(id: &str, node: &Arc<Node>, make: fn(Arc<Node>) -> A) -> ChildSpec
where
    A: Actor<Arguments = ()>,
    A::Msg: std::fmt::Debug,
{
    let node = node.clone();
    ChildSpec::worker(id, move |ctx: StartCtx| {
        let actor = make(node.clone());
        async move {
            #[cfg(feature = "faults")]
            crate::faults::check_start(&ctx.path)?;
            ctx.spawn(actor, ()).await
        }
    })
}

/// A permanent task child: `start` sets it up and returns its loop.
fn task<F, L>(id: &str, node: &Arc<Node>, start: fn(Arc<Node>) -> F) -> ChildSpec
where
    F: Future<Output = Result<L, ActorProcessingErr>> + Send + 'static,
    L: Future<Output = TaskResult> + Send + 'static,
{
    let node = node.clone();
    ChildSpec::task(id, move |ctx: StartCtx| {
        let start = start(node.clone());
        async move {
            #[cfg(feature = "faults")]
            crate::faults::check_start(&ctx.path)?;
            #[cfg(not(feature = "faults"))]
            let _ = ctx;
            start.await
        }
    })
}

/// The store subtree: independent children (the corpus keeps its own
/// connection, the pool its own), so one_for_one.
fn store(node: &Arc<Node>) -> ChildSpec {
    SupervisorSpec::new(
        SupervisorFlags::new(Strategy::OneForOne)
            .intensity(5)
            .period(Duration::from_secs(10)),
    )
    .child(actor(store::POSTGRES, node, |node| PostgresPool { node }).shutdown(ms(5_000)))
    .child(actor(store::CORPUS, node, |node| Corpus { node }).shutdown(ms(2_000)))
    .into_child_spec(child::STORE)
}

/// The worker pool: a dynamic supervisor sized by the node's pool target
/// (`workers.count` at start, then `scale`), so a restarted pool comes back
/// at its last size.
fn workers(node: &Arc<Node>) -> ChildSpec {
    let mut pool = SupervisorSpec::new(
        SupervisorFlags::new(Strategy::Dynamic)
            .intensity(1_000)
            .period(Duration::from_secs(5)),
    )
    .child(actor(template::WORKER, node, |node| Worker { node }).shutdown(ms(5_000)));
    pool.size = Some(node.workers.target().clone());
    pool.into_child_spec(child::WORKERS)
}

/// The cluster subtree: everything depends on the node server, and the
/// peers on the membership that starts them, so rest_for_one. A process
/// started by an upgrade adds it once the old process has released the
/// cluster port.
pub(crate) fn cluster(node: &Arc<Node>) -> ChildSpec {
    let config = node.config();
    let member = config.cluster.member_name(&config.node);
    let endpoint = {
        let node = node.clone();
        ChildSpec::worker(cluster::ENDPOINT, move |ctx: StartCtx| {
            let (node, name) = (node.clone(), endpoint_name(&member));
            async move { ctx.spawn_named(name, ClusterEndpoint { node }, ()).await }
        })
        .shutdown(ms(1_000))
    };
    let peer = {
        let node = node.clone();
        ChildSpec::worker(template::PEER, move |ctx: StartCtx| {
            let node = node.clone();
            async move {
                let addr = ctx
                    .args::<PeerAddr>()
                    .cloned()
                    .ok_or("a peer needs its address")?;
                ctx.spawn(Peer { node }, addr).await
            }
        })
        .shutdown(ms(1_000))
    };
    let peers = SupervisorSpec::new(
        SupervisorFlags::new(Strategy::Dynamic)
            .intensity(100)
            .period(Duration::from_secs(5)),
    )
    .child(peer);
    let mut spec = SupervisorSpec::new(
        SupervisorFlags::new(Strategy::RestForOne)
            .intensity(5)
            .period(Duration::from_secs(10)),
    )
    .child(actor(cluster::SERVER, node, |node| ClusterServer { node }).shutdown(ms(2_000)));
    if config.cluster.uses_tls() {
        spec = spec.child(task(cluster::TLS, node, tls_listener::start).shutdown(ms(1_000)));
    }
    spec.child(endpoint)
        .child(actor(cluster::MEMBERSHIP, node, |node| Membership { node }).shutdown(ms(1_000)))
        .child(peers.into_child_spec(cluster::PEERS))
        .into_child_spec(child::CLUSTER)
}

/// The admin listener (the observer page), with `admin.addr` set.
fn admin(node: &Arc<Node>) -> Option<ChildSpec> {
    node.config().admin.listen()?;
    Some(task(child::ADMIN, node, admin_listener::start).shutdown(ms(1_000)))
}

/// The child `id` of [`EXCLUSIVE`] (what only one process may hold), when
/// this node runs it.
fn exclusive_child(node: &Arc<Node>, id: &str) -> Option<ChildSpec> {
    match id {
        child::CLUSTER => node.config().cluster.enabled.then(|| cluster(node)),
        child::ADMIN => admin(node),
        _ => None,
    }
}

/// The children of [`EXCLUSIVE`] this node runs, which a process started
/// by an upgrade starts once the old process has released them.
pub(crate) fn exclusive(node: &Arc<Node>) -> Vec<ChildSpec> {
    EXCLUSIVE
        .iter()
        .filter_map(|id| exclusive_child(node, id))
        .collect()
}

/// The whole tree. `exclusive: false` leaves out the children of
/// [`exclusive`] (a process started by an upgrade starts them after the
/// hand-over).
pub(crate) fn spec(node: &Arc<Node>, exclusive: bool) -> SupervisorSpec {
    let mut spec = SupervisorSpec::new(
        SupervisorFlags::new(Strategy::OneForOne)
            .intensity(10)
            .period(Duration::from_secs(60)),
    )
    .child(store(node))
    .child(actor(child::LIMITER, node, |node| RedisLimiter { node }).shutdown(ms(2_000)))
    .child(task(child::METRICS, node, metrics_actor::start).shutdown(ms(1_000)))
    .child(actor(child::LOAD, node, |node| LoadSampler { node }).shutdown(ms(1_000)))
    .child(task(child::CONTROL, node, control_socket::start).shutdown(ms(2_000)))
    .child(actor(child::UPGRADE, node, |node| Upgrader { node }).shutdown(ms(1_000)));
    // The children of EXCLUSIVE, where they stand in the start order; a
    // process started by an upgrade adds them after the hand-over.
    let held = |spec: SupervisorSpec, id: &str| match exclusive.then(|| exclusive_child(node, id)).flatten() {
        Some(child) => spec.child(child),
        None => spec,
    };
    spec = held(spec, child::CLUSTER)
        .child(workers(node))
        .child(task(child::LISTENER, node, listener::start).shutdown(ms(5_000)))
        .child(task(child::OBSERVER, node, publisher::start).shutdown(ms(1_000)));
    spec = held(spec, child::ADMIN);
    if crate::systemd::active() {
        spec = spec.child(task(child::WATCHDOG, node, watchdog::start).shutdown(ms(1_000)));
    }
    spec
}
