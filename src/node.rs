//! [`Node`]: what the actors of one running diem share.
//!
//! Actors talk by messages; the node holds only what the request path must
//! read without a message round trip, each piece published by the actor
//! that owns it and swapped atomically when it changes: the snapshot (the
//! corpus actor), the PostgreSQL pool (the pool actor), the Redis handle
//! (the limiter actor), the worker registry (the workers), the listening
//! sockets (HTTP and control, bound once at start so that actor restarts
//! never refuse a connection, and handed as they are to an upgrade). None of it needs a lock on the request path.
//!
//! The node sits below every actor: this module imports what the actors
//! publish (each in a module of its own that imports nothing of its actor),
//! never an actor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use supervisors::{snapshot, EventBus, SupervisorError, SupervisorRef, TreeNode};
use tokio::sync::watch;

use crate::admin::access::Access;
use crate::api::credentials::Guard;
use crate::cluster::shared::ClusterShared;
use crate::config::Config;
use crate::control::shared::ControlShared;
use crate::http::shared::HttpShared;
use crate::limiter::Limiter;
use crate::load::shared::LoadShared;
use crate::metrics::Metrics;
use crate::observer::shared::ObserverShared;
use crate::store::corpus_shared::CorpusShared;
use crate::store::pg_shared::PgShared;
use crate::telemetry::LogControl;
use crate::tree_paths::{POOL, ROOT};
use crate::upgrade::shared::UpgradeShared;
use crate::workers::pool::WorkerPool;

/// The shared state of a running node.
pub struct Node {
    config: ArcSwap<Config>,
    /// The config file given at start (re-read by `reload`).
    pub config_path: Option<PathBuf>,
    /// When the node started.
    pub started_at: Instant,
    /// The published corpus.
    pub(crate) corpus: CorpusShared,
    /// The PostgreSQL pool.
    pub(crate) pg: PgShared,
    /// The rate limiter.
    pub(crate) limiter: Limiter,
    /// Failed authentications per client (see [`api::auth`](crate::api::auth)).
    pub(crate) auth: Guard,
    /// Who may use the admin listener: its sessions and login links.
    pub(crate) admin: Access,
    /// The worker registry and admission bound.
    pub workers: WorkerPool,
    /// The listening socket and the open connections.
    pub(crate) http: HttpShared,
    /// Metric handles.
    pub(crate) metrics: Metrics,
    /// The live log filter, when this process set up logging.
    pub(crate) log: Option<LogControl>,
    /// The root supervisor, once started.
    pub(crate) root: OnceLock<SupervisorRef>,
    /// The supervision events of the tree.
    pub(crate) events: EventBus,
    /// The cluster (inert unless `[cluster] enabled`).
    pub(crate) cluster: ClusterShared,
    /// The control socket.
    pub(crate) control: ControlShared,
    /// The upgrader's handle.
    pub(crate) upgrade: UpgradeShared,
    /// The observer's viewers, frames and event log.
    pub(crate) observer: ObserverShared,
    /// Every actor's load, as the load sampler last read it.
    pub(crate) load: LoadShared,
    draining: AtomicBool,
    shutdown: watch::Sender<Option<Stop>>,
    admin_port: std::sync::atomic::AtomicU16,
}

/// Why the node stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, SIGINT or `ctl shutdown`, with this grace period for the
    /// requests in flight.
    Shutdown(Duration),
    /// An upgrade handed the sockets to a new process: drain and exit.
    HandedOver,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.config().node.name)
            .field("workers", &self.workers.size())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node for `config` (nothing started yet).
    pub fn new(config: Config, config_path: Option<PathBuf>, log: Option<LogControl>) -> Arc<Self> {
        Arc::new(Self {
            corpus: CorpusShared::default(),
            pg: PgShared::default(),
            limiter: Limiter::new(&config.limiter),
            auth: Guard::default(),
            admin: Access::default(),
            workers: WorkerPool::new(config.workers.count, config.workers.queue_depth),
            http: HttpShared::default(),
            metrics: Metrics::new(&config.node.name),
            log,
            root: OnceLock::new(),
            events: EventBus::new(),
            cluster: ClusterShared::default(),
            control: ControlShared::default(),
            upgrade: UpgradeShared::default(),
            observer: ObserverShared::default(),
            load: LoadShared::default(),
            draining: AtomicBool::new(false),
            admin_port: std::sync::atomic::AtomicU16::new(0),
            shutdown: watch::Sender::new(None),
            config: ArcSwap::from_pointee(config),
            config_path,
            started_at: Instant::now(),
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Reads the configuration without taking a reference count (for the
    /// request path).
    pub fn with_config<R>(&self, f: impl FnOnce(&Config) -> R) -> R {
        f(&self.config.load())
    }

    /// Replaces the configuration in effect (after `reload` applied it).
    pub fn set_config(&self, config: Config) {
        self.config.store(Arc::new(config));
    }

    /// The root supervisor.
    pub fn root(&self) -> Option<&SupervisorRef> {
        self.root.get()
    }

    /// The tree as `ctl tree` and the observer show it: a snapshot, with
    /// the worker pool's admission figures on the pool's node.
    pub async fn tree(&self) -> Result<TreeNode, SupervisorError> {
        let root = self
            .root()
            .ok_or_else(|| SupervisorError::NotRunning(ROOT.to_owned()))?;
        let mut tree = snapshot(root).await?;
        if let Some(pool) = tree.find_mut(POOL) {
            pool.annotations
                .insert("queue_depth".into(), self.workers.in_flight() as u64);
            pool.annotations
                .insert("capacity".into(), self.workers.capacity() as u64);
        }
        Ok(tree)
    }

    /// Asks the node to shut down gracefully (as SIGTERM does), with this
    /// grace period for in-flight requests (default `http.shutdown_grace`).
    pub fn request_shutdown(&self, grace: Option<Duration>) -> Duration {
        let grace = grace.unwrap_or(self.config().http.shutdown_grace.get());
        self.shutdown.send_replace(Some(Stop::Shutdown(grace)));
        grace
    }

    /// Tells the node that a new process serves on its sockets now.
    pub(crate) fn handed_over(&self) {
        self.shutdown.send_replace(Some(Stop::HandedOver));
    }

    /// Waits for a shutdown request or a hand-over.
    pub async fn shutdown_requested(&self) -> Stop {
        let mut rx = self.shutdown.subscribe();
        let stop = rx.wait_for(Option::is_some).await.map(|v| *v);
        match stop {
            Ok(Some(stop)) => stop,
            _ => Stop::Shutdown(Duration::ZERO),
        }
    }

    /// The port the admin listener is bound to, once it is.
    pub(crate) fn admin_port(&self) -> Option<u16> {
        Some(self.admin_port.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    /// Records the admin listener's port.
    pub(crate) fn set_admin_port(&self, port: u16) {
        self.admin_port.store(port, Ordering::Relaxed);
    }

    /// Marks the node as shutting down: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
