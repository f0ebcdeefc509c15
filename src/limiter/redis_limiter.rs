//! The Redis limiter actor (`diem/limiter`).
//!
//! It owns the fred client and, while Redis answers, publishes a
//! [`RedisHandle`] in the node's [`Limiter`](super::Limiter). Keys Redis
//! already holds go from requests to a batcher task owned by the actor,
//! which takes everything queued (up to `limiter.max_batch`) and sends it as
//! one `EVALSHA` of [`SCRIPT`] (on the hot-path connection,
//! [`pipe`](super::pipe), when there is one; else through fred), which runs
//! the GCRA for each key in turn and returns the five `CL.THROTTLE` numbers
//! for each; up to four batches are in flight at once. Every decision is
//! made by Redis, atomically per key.
//!
//! A failed or late reply (after `redis.command_timeout`) sends that
//! request to the local fallback and makes the actor withdraw the handle:
//! from then on requests decide locally at once, until a health check (every
//! `redis.health_interval`) finds Redis back, when it publishes a new one.
//! Killing the actor withdraws the queue too (requests then decide locally)
//! and closes its connection; the next incarnation reconnects.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Builder, Client, ClientLike, ClusterInterface, Options, ReconnectPolicy, TcpConfig};
use fred::types::config::{
    Config, Server, ServerConfig, TlsConfig, TlsConnector, TlsHostMapping, UnresponsiveConfig,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervisors::Counted;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::rustls::ClientConfig;

use crate::limiter::last_error::{self, LastError};
use crate::limiter::pipe::{Pipe, Target};
use crate::limiter::pipes::Pipes;
use crate::limiter::redis_handle::{
    eval, eval_on_pipes, now_us, write_back, LimiterMsg, Pending, RedisFailure, RedisHandle,
    REDIRECT_ATTEMPTS, SCRIPT,
};
use crate::limiter::redis_tls::client_tls;
use crate::limiter::replica_wait::ReplicaWait;
use crate::limiter::switch_watch;
use crate::node::Node;
use crate::owned_task::OwnedTask;
use crate::tls_files::refusal;

const QUEUE: usize = 65_536;
const BATCHES_IN_FLIGHT: usize = 4;
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How long the connections of a handle replaced after a `MOVED` are kept.
const RETIRED_FOR: Duration = Duration::from_secs(2);

/// Health checks that must pass in a row before decisions go back to a
/// Redis that failed: one success in a flapping Redis is no proof, and each
/// switch is a moment when two stores disagree about a client.
const BACK_AFTER: u32 = 2;

/// Builds a fred client for `redis.url` (over TLS with `tls`, from
/// [`client_tls`]) that gives up on a command after `timeout` and
/// reconnects forever in the background.
pub fn client(url: &str, tls: Option<Arc<ClientConfig>>, timeout: Duration) -> Result<Client, RedisFailure> {
    client_of(crate::config::parse_redis_url(url)?, tls, timeout)
}

/// `config` (a parsed Sentinel URL) with `sentinel` first among its
/// Sentinels (added if the URL did not name it); any other URL as it is.
fn asking_first(mut config: Config, sentinel: &Server) -> Config {
    if let ServerConfig::Sentinel { hosts, .. } = &mut config.server {
        hosts.retain(|h| h != sentinel);
        hosts.insert(0, sentinel.clone());
    }
    config
}

/// A client of `config` (a parsed `redis.url`), as [`client`] makes one.
fn client_of(
    mut config: Config,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<Client, RedisFailure> {
    if let Some(tls) = tls {
        config.tls = Some(TlsConfig {
            connector: TlsConnector::Rustls(tokio_rustls::TlsConnector::from(tls)),
            hostnames: TlsHostMapping::None,
        });
    }
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = timeout.max(Duration::from_millis(500));
            c.internal_command_timeout = timeout.max(Duration::from_millis(500));
            // A cluster's MOVED and ASK count as attempts: 3 lets fred follow
            // a redirection (a resharding, a failover); the command timeout
            // still bounds the whole.
            c.max_command_attempts = REDIRECT_ATTEMPTS;
            c.unresponsive = UnresponsiveConfig {
                max_timeout: Some(timeout.max(Duration::from_millis(200))),
                interval: Duration::from_millis(100),
            };
            c.tcp = TcpConfig {
                nodelay: Some(true),
                ..TcpConfig::default()
            };
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 500, 2))
        .build()
        .map_err(RedisFailure::from)
}

/// The Redis limiter actor.
#[derive(Debug)]
pub(crate) struct RedisLimiter {
    /// The node it serves.
    pub(crate) node: Arc<Node>,
}

/// A published queue and its batcher; withdrawn when dropped.
struct Published {
    node: Arc<Node>,
    handle: Arc<RedisHandle>,
    _batcher: OwnedTask,
    _pipes: Vec<OwnedTask>,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.node.limiter.unpublish_redis(&self.handle);
    }
}

/// The client and its connection task; closed when dropped.
struct Connection {
    client: Client,
    task: tokio::task::JoinHandle<Result<(), fred::error::Error>>,
}

impl Connection {
    /// `client` connecting (and reconnecting) in the background, and the
    /// task keeping its last connection error in `errors`.
    fn open(client: Client, errors: &LastError) -> (Self, OwnedTask) {
        let watch = OwnedTask::spawn(last_error::keep(&client, errors.clone(), String::new()), || {});
        let task = client.connect();
        (Self { client, task }, watch)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let client = self.client.clone();
        let task = self.task.abort_handle();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_millis(500), client.quit()).await;
                task.abort();
            });
        } else {
            task.abort();
        }
    }
}

/// The Redis limiter actor's state.
pub(crate) struct LimiterState {
    connection: Connection,
    connection_error: LastError,
    _errors: OwnedTask,
    /// With a Sentinel URL, the subscribers to `+switch-master`.
    _switches: Vec<OwnedTask>,
    /// Why a Sentinel refused the switch watch's subscription, if one did.
    sentinel_error: LastError,
    /// Health checks passed in a row since the last failure: decisions go
    /// back to Redis after [`BACK_AFTER`] of them.
    healthy_in_a_row: u32,
    /// When the slot map was last read again after a `MOVED`.
    last_moved: Option<std::time::Instant>,
    /// Handles published so far (failures of older ones are ignored).
    generation: u64,
    /// Handles replaced after a `MOVED`, kept a while so that their
    /// connections answer the requests they carry; dropped by `Tick`.
    retired: Vec<(std::time::Instant, Published)>,
    /// The TLS of a `rediss` URL, for the hot-path connection.
    tls: Option<Arc<ClientConfig>>,
    /// `WAIT` after every write, with `redis.wait_replicas`.
    wait: Option<ReplicaWait>,
    sha: Arc<str>,
    published: Option<Published>,
}

impl std::fmt::Debug for LimiterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimiterState")
            .field("published", &self.published.is_some())
            .finish_non_exhaustive()
    }
}

#[allow(clippy::too_many_arguments)]
async fn batcher(
    node: Arc<Node>,
    me: Counted<LimiterMsg>,
    client: Client,
    pipes: Option<Pipes>,
    sha: Arc<str>,
    mut rx: mpsc::Receiver<Pending>,
    generation: u64,
    wait: Option<ReplicaWait>,
) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    loop {
        let config = node.config();
        let max = config.limiter.max_batch;
        let mut batch = Vec::with_capacity(max);
        if rx.recv_many(&mut batch, max).await == 0 {
            return;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        // Take what queued while waiting for a free slot, too.
        while batch.len() < max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let params = node.limiter.settings().params;
        let timeout = config.redis.command_timeout;
        let (client, pipes, sha, me) = (client.clone(), pipes.clone(), sha.clone(), me.clone());
        let wait = wait.clone();
        tokio::spawn(async move {
            let now = now_us();
            let keys: Vec<String> = batch.iter().map(|p| p.key.clone()).collect();
            let decided = match &pipes {
                Some(pipes) => {
                    let moved = || {
                        let _ = me.send(LimiterMsg::Moved);
                    };
                    eval_on_pipes(
                        pipes,
                        &client,
                        &moved,
                        &sha,
                        keys,
                        &params,
                        now,
                        timeout.get(),
                        wait.as_ref(),
                    )
                    .await
                }
                // Boxed: fred's future is large, and inside the spawned task
                // it was moved whole on the task's way into the runtime
                // (1,368 instructions of copies per request of the zipf mix).
                None => {
                    let wait = wait.as_ref();
                    Box::pin(eval(&client, &sha, keys, &params, Some(now), timeout.get(), wait)).await
                }
            };
            match decided {
                Ok(decisions) => {
                    for (p, d) in batch.into_iter().zip(decisions) {
                        let _ = p.reply.send((d, now));
                    }
                }
                // Dropping the replies sends these requests to the local store.
                Err(e) => {
                    let _ = me.send(LimiterMsg::Failed(e.to_string(), generation));
                }
            }
            drop(permit);
        });
    }
}

impl RedisLimiter {
    /// Whether Redis answers and holds the script; if not, why — with the
    /// connection's own error when a command only saw it as a timeout (a
    /// certificate refused is said as such, not as "unreachable").
    async fn check_health(&self, state: &LimiterState) -> Result<(), String> {
        match self
            .healthy(&state.connection.client, &state.sha, state.wait.as_ref())
            .await
        {
            Ok(()) => {
                if let Ok(mut last) = state.connection_error.lock() {
                    *last = None;
                }
                Ok(())
            }
            Err(e) => {
                let last = state.connection_error.lock().ok().and_then(|l| l.clone());
                let sentinel = state.sentinel_error.lock().ok().and_then(|l| l.clone());
                let mut why = e.to_string();
                if let Some(conn) = last {
                    why = format!("{why}; the connection: {conn}");
                }
                if let Some(sentinel) = sentinel {
                    why = format!("{why}; the switch watch: {sentinel}");
                }
                Err(why)
            }
        }
    }

    /// Redis answers and decides: `PING`, and the script run on a probe key
    /// of this node (`<prefix>probe:<node>`) under the limit in effect,
    /// loaded (on every primary of a cluster) if Redis does not hold it — a
    /// Redis that answers `PING` but refuses the script (a read-only
    /// replica, a full memory, a missing Lua) is not healthy; nor, with
    /// `redis.wait_replicas`, one whose replicas do not acknowledge it.
    async fn healthy(
        &self,
        client: &Client,
        sha: &str,
        wait: Option<&ReplicaWait>,
    ) -> Result<(), RedisFailure> {
        let config = self.node.config();
        let timeout = config.redis.command_timeout.get().max(Duration::from_millis(200));
        let opts = Options {
            timeout: Some(timeout),
            max_attempts: Some(1),
            ..Options::default()
        };
        let c = client.with_options(&opts);
        let _: String = c.ping(None).await?;
        let probe = format!("{}probe:{}", config.redis.key_prefix, config.node.name);
        let params = self.node.limiter.settings().params;
        Box::pin(eval(client, sha, vec![probe], &params, None, timeout, wait)).await?;
        Ok(())
    }

    /// The hot-path connections: one when the URL names one server (or a
    /// Sentinel set: to the primary fred is connected to now, so it
    /// follows a failover each time it is made again), one per primary of
    /// a cluster's slot map as fred read it last; `None` (and fred decides
    /// alone) if one cannot connect.
    async fn pipes(
        &self,
        myself: &ActorRef<LimiterMsg>,
        state: &LimiterState,
        generation: u64,
    ) -> Option<(Pipes, Vec<OwnedTask>)> {
        let config = self.node.config();
        let url = &config.redis.url;
        let timeout = config.redis.command_timeout.get();
        let client = &state.connection.client;
        let wait = &state.wait;
        let connect = |target: Target| async move {
            match Pipe::connect(&target, timeout, wait.clone()).await {
                Ok((pipe, drive)) => {
                    let me = Counted::of(myself.clone());
                    let task = OwnedTask::spawn(
                        async move {
                            let why = drive.await;
                            let _ = me.send(LimiterMsg::Failed(why.to_string(), generation));
                        },
                        || {},
                    );
                    Some((pipe, task))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate limiter: no hot-path connection; deciding through the client");
                    None
                }
            }
        };
        if let Some(target) = Target::of_url(url, state.tls.clone()) {
            let (pipe, task) = connect(target).await?;
            return Some((Pipes::One(pipe), vec![task]));
        }
        if !client.is_clustered() {
            let primary = client.active_connections().into_iter().next()?;
            let (pipe, task) = connect(Target::of_primary(url, &primary, state.tls.clone())?).await?;
            return Some((Pipes::One(pipe), vec![task]));
        }
        let routing = client.cached_cluster_state()?;
        let mut primaries: Vec<String> = Vec::new();
        let mut pipes = Vec::new();
        let mut tasks = Vec::new();
        for range in routing.slots() {
            let addr = format!("{}:{}", range.primary.host, range.primary.port);
            if primaries.contains(&addr) {
                continue;
            }
            let (pipe, task) = connect(Target::of_primary(url, &range.primary, state.tls.clone())?).await?;
            primaries.push(addr);
            pipes.push(pipe);
            tasks.push(task);
        }
        Some((Pipes::cluster(&routing, &primaries, pipes)?, tasks))
    }

    async fn publish(&self, myself: &ActorRef<LimiterMsg>, state: &mut LimiterState) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let config = self.node.config();
        // What the local fallback admitted meanwhile, told first: Redis
        // must not hand out that budget again.
        let spent = self.node.limiter.local().take_local();
        if !spent.is_empty() {
            let told = write_back(
                &state.connection.client,
                &config.redis.key_prefix,
                &spent,
                config.limiter.max_batch,
                config.redis.command_timeout.get().max(Duration::from_millis(200)),
                state.wait.as_ref(),
            )
            .await;
            match told {
                Ok(n) => tracing::info!(
                    clients = spent.len(),
                    newer = n,
                    "rate limiter: told redis what was admitted locally"
                ),
                // Redis failed again: stay local (the entries are retried
                // on the next switch only if decided locally again).
                Err(e) => {
                    self.withdraw(state, e.to_string());
                    return;
                }
            }
        }
        state.generation += 1;
        let generation = state.generation;
        let (pipes, pipe_tasks) = match self.pipes(myself, state, generation).await {
            Some((pipes, tasks)) => (Some(pipes), tasks),
            None => (None, Vec::new()),
        };
        let handle = Arc::new(RedisHandle::new(
            state.connection.client.clone(),
            pipes.clone(),
            config.redis.key_prefix.clone(),
            config.redis.command_timeout.get(),
            tx,
            Counted::of(myself.clone()),
            generation,
            state.wait.clone(),
        ));
        let batcher = OwnedTask::spawn(
            batcher(
                self.node.clone(),
                Counted::of(myself.clone()),
                state.connection.client.clone(),
                pipes.clone(),
                state.sha.clone(),
                rx,
                generation,
                state.wait.clone(),
            ),
            || {},
        );
        self.node.limiter.publish_redis(Some(handle.clone()));
        state.published = Some(Published {
            node: self.node.clone(),
            handle,
            _batcher: batcher,
            _pipes: pipe_tasks,
        });
        tracing::info!("rate limiter: deciding in redis");
    }

    /// The Sentinels switched the primary to `primary`: a new fred client
    /// (which asks the Sentinels which primary to connect to) replaces the
    /// old one, and once it answers there, the hot-path connection moves
    /// to it. One health
    /// check suffices here, not the two in a row that bring decisions back
    /// after failures: the switch is the store's own word that the new
    /// primary is the one. What was decided locally meanwhile is written
    /// back first, as after any fallback.
    async fn switched(
        &self,
        myself: &ActorRef<LimiterMsg>,
        state: &mut LimiterState,
        primary: &str,
        announced_by: &Server,
    ) {
        tracing::info!(%primary, "rate limiter: the sentinels switched the primary; connecting to it");
        self.node.limiter.count_switch();
        let heard = std::time::Instant::now();
        let config = self.node.config();
        let command_timeout = config.redis.command_timeout.get();
        // A client of its own asks the Sentinels now; the old one would
        // at its next reconnection attempt, after its backoff (up to
        // 500 ms: ~300 ms measured with `force_reconnection`). It asks the
        // Sentinel that announced the switch first: fred asks the first
        // Sentinel of its list that answers, and another may not have
        // heard of the switch yet (under load they agreed seconds apart,
        // and a client asking a Sentinel that did not know went on
        // connecting to the dead primary until it did).
        let fresh = crate::config::parse_redis_url(&config.redis.url)
            .map_err(RedisFailure::from)
            .and_then(|c| client_of(asking_first(c, announced_by), state.tls.clone(), command_timeout));
        match fresh {
            Ok(client) => {
                let (fresh, errors) = Connection::open(client, &state.connection_error);
                let wait = command_timeout.max(Duration::from_millis(500));
                let _ = tokio::time::timeout(wait, fresh.client.wait_for_connect()).await;
                state._errors = errors;
                // The old client is closed when dropped.
                state.connection = fresh;
            }
            Err(e) => tracing::warn!(error = %e, "rate limiter: no new client for the switched primary"),
        }
        let reconnected_ms = heard.elapsed().as_millis() as u64;
        match self.check_health(state).await {
            Ok(()) => {
                let checked_ms = heard.elapsed().as_millis() as u64;
                state.healthy_in_a_row = BACK_AFTER;
                self.republish(myself, state).await;
                tracing::info!(
                    %primary,
                    reconnected_ms,
                    checked_ms,
                    published_ms = heard.elapsed().as_millis() as u64,
                    "rate limiter: following the sentinels' switch"
                );
            }
            // Not there yet: the health checks bring decisions back.
            Err(e) => {
                tracing::warn!(
                    %primary,
                    reconnected_ms,
                    error = %e,
                    "rate limiter: the switched primary does not decide yet; the health checks will bring decisions back"
                );
                state.healthy_in_a_row = 0;
                self.withdraw(state, e);
            }
        }
    }

    /// Publishes anew (new connections to the primaries as they are now);
    /// the old ones are retired, and finish what they carry.
    async fn republish(&self, myself: &ActorRef<LimiterMsg>, state: &mut LimiterState) {
        if let Some(old) = state.published.take() {
            state.retired.push((std::time::Instant::now(), old));
        }
        self.publish(myself, state).await;
    }

    /// Decides locally from now on, because of `error`: said once when
    /// the handle is withdrawn, and again when the reason changes to (or
    /// from) a certificate refused.
    fn withdraw(&self, state: &mut LimiterState, error: String) {
        let refused = refusal(&error);
        let was = self.node.limiter.why_local();
        let changed = was.as_deref().map(|w| refusal(w)) != Some(refused);
        if state.published.take().is_some() || changed {
            let redis = crate::config::show::redact_secrets(&self.node.config().redis.url);
            match refused {
                Some(why) => tracing::warn!(
                    %redis,
                    %error,
                    "rate limiter: redis TLS refused ({why}; see redis.tls_ca, redis.tls_verify_hostname), deciding locally"
                ),
                None => tracing::warn!(
                    %redis,
                    %error,
                    "rate limiter: redis is unreachable (or cannot run the script), deciding locally"
                ),
            }
        }
        self.node.limiter.set_why_local(error);
    }
}

impl Actor for RedisLimiter {
    type Msg = LimiterMsg;
    type State = LimiterState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<LimiterMsg>,
        _: (),
    ) -> Result<LimiterState, ActorProcessingErr> {
        let config = self.node.config();
        let timeout = config.redis.command_timeout;
        let tls = client_tls(&config.redis)?;
        let connection_error = LastError::default();
        let (connection, errors) = Connection::open(
            client(&config.redis.url, tls.clone(), timeout.get())?,
            &connection_error,
        );
        let sentinel_error = LastError::default();
        let switches = switch_watch::watch(
            &config.redis.url,
            tls.clone(),
            Counted::of(myself.clone()),
            &sentinel_error,
        );
        let mut state = LimiterState {
            _switches: switches,
            sentinel_error,
            connection,
            connection_error,
            _errors: errors,
            healthy_in_a_row: 0,
            last_moved: None,
            generation: 0,
            retired: Vec::new(),
            tls,
            wait: (config.redis.wait_replicas > 0).then(|| {
                ReplicaWait::new(
                    config.redis.wait_replicas,
                    config.redis.wait_timeout.get(),
                    self.node.limiter.wait_short_counter(),
                )
            }),
            sha: Arc::from(fred::util::sha1_hash(SCRIPT)),
            published: None,
        };
        // Decide in Redis from the first request when Redis is up: the
        // listener starts after the limiter.
        match self.check_health(&state).await {
            Ok(()) => self.publish(&myself, &mut state).await,
            Err(e) => self.withdraw(&mut state, e),
        }
        let every = config.redis.health_interval;
        Counted::of(myself.clone()).send_after(every.get(), || LimiterMsg::Tick);
        Counted::of(myself.clone()).send_after(SWEEP_EVERY, || LimiterMsg::Sweep);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<LimiterMsg>,
        msg: LimiterMsg,
        state: &mut LimiterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LimiterMsg::Tick => {
                state.retired.retain(|(at, _)| at.elapsed() < RETIRED_FOR);
                match self.check_health(state).await {
                    Ok(()) => {
                        state.healthy_in_a_row = state.healthy_in_a_row.saturating_add(1);
                        if state.published.is_none() && state.healthy_in_a_row >= BACK_AFTER {
                            self.publish(&myself, state).await;
                        }
                    }
                    Err(e) => {
                        state.healthy_in_a_row = 0;
                        self.withdraw(state, e);
                    }
                }
                let every = self.node.config().redis.health_interval;
                Counted::of(myself.clone()).send_after(every.get(), || LimiterMsg::Tick);
            }
            LimiterMsg::Sweep => {
                self.node.limiter.local().sweep();
                self.node.limiter.deny_cache().sweep(now_us());
                self.node.auth.sweep();
                Counted::of(myself.clone()).send_after(SWEEP_EVERY, || LimiterMsg::Sweep);
            }
            // A failure of a handle already replaced (its connections
            // retired after a cluster's slots moved) says nothing of Redis.
            LimiterMsg::Failed(_, generation) if generation != state.generation => {}
            LimiterMsg::Failed(e, _) => {
                state.healthy_in_a_row = 0;
                self.withdraw(state, e);
            }
            LimiterMsg::Switched { primary, sentinel } => {
                self.switched(&myself, state, &primary, &sentinel).await
            }
            LimiterMsg::Moved => {
                // One resync for the burst of requests that met the move.
                let recent = state
                    .last_moved
                    .is_some_and(|t| t.elapsed() < Duration::from_millis(200));
                if !recent && state.published.is_some() {
                    state.last_moved = Some(std::time::Instant::now());
                    let timeout = self.node.config().redis.command_timeout.get();
                    let synced = tokio::time::timeout(timeout.max(Duration::from_millis(500)), async {
                        state.connection.client.sync_cluster().await
                    })
                    .await;
                    tracing::info!(
                        synced = matches!(synced, Ok(Ok(()))),
                        "rate limiter: a cluster slot moved; connecting to its primaries anew"
                    );
                    self.republish(&myself, state).await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
