//! The Redis limiter actor (`diem/limiter`).
//!
//! It owns the fred client and, while Redis answers, publishes a
//! [`RedisHandle`] in the node's [`Limiter`](super::Limiter). A request's
//! decision costs one plain Redis command in the common case — a client not
//! seen within its window — and fred pipelines the commands of concurrent
//! requests on one connection (`RedisHandle::check`). Keys Redis already
//! holds go to a batcher task that takes everything queued (up to
//! `limiter.max_batch`) and sends it as one `EVALSHA` of [`SCRIPT`], which
//! runs the GCRA for each key in turn and returns the five `CL.THROTTLE`
//! numbers for each; up to four batches are in flight at once. Every
//! decision is made by Redis, atomically per key.
//!
//! A failed or late reply (after `redis.command_timeout_ms`) sends that
//! request to the local fallback and makes the actor withdraw the handle:
//! from then on requests decide locally at once, until a health check (every
//! `redis.health_interval_ms`) finds Redis back, when it publishes a new one.
//! Killing the actor withdraws the queue too (requests then decide locally)
//! and closes its connection; the next incarnation reconnects.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{
    Builder, Client, ClientLike, Config as RedisConfigUrl, Expiration, KeysInterface, LuaInterface, Options,
    ReconnectPolicy, SetOptions, TcpConfig,
};
use fred::types::config::UnresponsiveConfig;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::limiter::gcra::{decide, Params, Throttle};
use crate::node::Node;
use crate::owned_task::OwnedTask;

/// The GCRA of [`gcra`](super::gcra) for every key of `KEYS`.
/// `ARGV`: max_burst, count, period (s), quantity, and optionally `now` in
/// µs (tests; otherwise Redis's `TIME`). Returns, per key: limited (0/1),
/// limit, remaining, retry after (µs, -1 when allowed), reset after (µs).
pub const SCRIPT: &str = r#"
local burst = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local quantity = tonumber(ARGV[4])
local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local emission = math.max(1, math.floor(period * 1000000 / count))
local tolerance = emission * (burst + 1)
local increment = emission * quantity
local out = {}
for _, key in ipairs(KEYS) do
  -- A key Redis does not hold is a client not seen within its window: the
  -- decision is "allowed" and its TAT now + increment (one call, no GET).
  local fresh_ttl = increment
  local stored = redis.call('SET', key, now + increment, 'NX', 'GET', 'PX', math.max(1, math.ceil(fresh_ttl / 1000)))
  local limited, retry, ttl
  if not stored then
    limited = 0
    retry = -1
    ttl = fresh_ttl
  else
    local tat = now
    stored = tonumber(stored)
    if stored and stored > now then tat = stored end
    local new_tat = math.max(tat, now) + increment
    local diff = now - (new_tat - tolerance)
    if diff < 0 then
      limited = 1
      if increment <= tolerance then retry = -diff else retry = -1 end
      ttl = tat - now
    else
      limited = 0
      retry = -1
      ttl = new_tat - now
      redis.call('SET', key, new_tat, 'PX', math.max(1, math.ceil(ttl / 1000)))
    end
  end
  local next = tolerance - ttl
  local remaining = 0
  if next > 0 then remaining = math.floor(next / emission) end
  out[#out + 1] = limited
  out[#out + 1] = burst + 1
  out[#out + 1] = remaining
  out[#out + 1] = retry
  out[#out + 1] = ttl
end
return out
"#;

const QUEUE: usize = 65_536;
const BATCHES_IN_FLIGHT: usize = 4;
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// A request whose key Redis holds: decided by the script, in a batch.
struct Pending {
    key: String,
    reply: oneshot::Sender<Throttle>,
}

/// What requests use while Redis is healthy: the client (for the fast
/// path) and the queue to the batcher (for keys Redis holds).
#[derive(Debug)]
pub struct RedisHandle {
    client: Client,
    prefix: String,
    timeout: Duration,
    tx: mpsc::Sender<Pending>,
    actor: ActorRef<LimiterMsg>,
}

impl RedisHandle {
    /// Redis's decision for `ip`, or `None` if Redis failed (decide locally
    /// then; the actor is told and withdraws the handle).
    ///
    /// One `SET key <now+emission> NX GET PX <emission>`: for a key Redis
    /// does not hold (a client not seen within its window) that *is* the
    /// GCRA's decision — allowed, with exactly the TAT and expiry the script
    /// would store — made atomically by Redis in one plain command. fred
    /// pipelines the commands of concurrent requests on one connection.
    /// A key Redis holds (the `GET` returned its TAT and `NX` changed
    /// nothing) goes to the batcher, which decides all such keys in one
    /// `EVALSHA` of [`SCRIPT`].
    pub(crate) async fn check(&self, ip: IpAddr, params: &Params) -> Option<Throttle> {
        let key = format!("{}rl:{ip}", self.prefix);
        let now = now_us();
        let emission = params.emission_us();
        let set = self.client.set::<Option<String>, _, _>(
            key.as_str(),
            now.saturating_add(emission),
            Some(Expiration::PX((emission + 999) / 1_000)),
            Some(SetOptions::NX),
            true,
        );
        match tokio::time::timeout(self.timeout, set).await {
            Ok(Ok(None)) => Some(decide(params, None, now, 1).0),
            Ok(Ok(Some(_held))) => {
                let (reply, rx) = oneshot::channel();
                self.tx.try_send(Pending { key, reply }).ok()?;
                rx.await.ok()
            }
            Ok(Err(e)) => {
                let _ = self.actor.send_message(LimiterMsg::Failed(e.to_string()));
                None
            }
            Err(_) => {
                let _ = self
                    .actor
                    .send_message(LimiterMsg::Failed(format!("no reply within {:?}", self.timeout)));
                None
            }
        }
    }
}

/// Decodes the script's reply for `n` keys.
pub fn decode(reply: &[i64], n: usize) -> Option<Vec<Throttle>> {
    if reply.len() != n * 5 {
        return None;
    }
    Some(
        reply
            .chunks_exact(5)
            .map(|c| Throttle {
                limited: c[0] != 0,
                limit: u64::try_from(c[1]).unwrap_or(0),
                remaining: u64::try_from(c[2]).unwrap_or(0),
                retry_after_us: c[3],
                reset_after_us: c[4],
            })
            .collect(),
    )
}

/// Runs the script for `keys` with `params` (and `now`, µs, if given).
pub async fn eval(
    client: &Client,
    sha: &str,
    keys: Vec<String>,
    params: &Params,
    now: Option<i64>,
    timeout: Duration,
) -> Result<Vec<Throttle>, String> {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut args = vec![i(params.burst), i(params.count), i(params.period_secs), 1];
    args.extend(now);
    let opts = Options {
        timeout: Some(timeout),
        fail_fast: true,
        max_attempts: Some(1),
        ..Options::default()
    };
    let c = client.with_options(&opts);
    let n = keys.len();
    let mut reply: Result<Vec<i64>, _> = c.evalsha(sha, keys.clone(), args.clone()).await;
    if matches!(&reply, Err(e) if e.details().contains("NOSCRIPT")) {
        let _: String = c.script_load(SCRIPT).await.map_err(|e| e.to_string())?;
        reply = c.evalsha(sha, keys, args).await;
    }
    let reply = reply.map_err(|e| e.to_string())?;
    decode(&reply, n).ok_or_else(|| format!("unexpected reply of {} numbers for {n} keys", reply.len()))
}

/// The node's clock in µs since the Unix epoch. Decisions use the clock of
/// the node making them (nodes are expected to run NTP: a skew of δ shifts
/// a client's budget by δ, negligible against emission intervals of
/// seconds).
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Builds a fred client for `url` that gives up on a command after
/// `timeout` and reconnects forever in the background.
pub fn client(url: &str, timeout: Duration) -> Result<Client, String> {
    let config = RedisConfigUrl::from_url(url).map_err(|e| e.to_string())?;
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = timeout.max(Duration::from_millis(500));
            c.internal_command_timeout = timeout.max(Duration::from_millis(500));
            c.max_command_attempts = 1;
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
        .map_err(|e| e.to_string())
}

/// Messages of the Redis limiter actor.
#[derive(Debug)]
pub enum LimiterMsg {
    /// Health check (internal timer).
    Tick,
    /// Sweep the local store (internal timer).
    Sweep,
    /// A Redis reply failed or came late (from a request or the batcher).
    Failed(String),
}

/// The Redis limiter actor.
#[derive(Debug)]
pub struct RedisLimiter {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// A published queue and its batcher; withdrawn when dropped.
struct Published {
    node: Arc<Node>,
    handle: Arc<RedisHandle>,
    _batcher: OwnedTask,
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
pub struct LimiterState {
    connection: Connection,
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

async fn batcher(
    node: Arc<Node>,
    me: ActorRef<LimiterMsg>,
    client: Client,
    sha: Arc<str>,
    mut rx: mpsc::Receiver<Pending>,
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
        let timeout = Duration::from_millis(config.redis.command_timeout_ms);
        let (client, sha, me) = (client.clone(), sha.clone(), me.clone());
        tokio::spawn(async move {
            let keys = batch.iter().map(|p| p.key.clone()).collect();
            match eval(&client, &sha, keys, &params, Some(now_us()), timeout).await {
                Ok(decisions) => {
                    for (p, d) in batch.into_iter().zip(decisions) {
                        let _ = p.reply.send(d);
                    }
                }
                // Dropping the replies sends these requests to the local store.
                Err(e) => {
                    let _ = me.send_message(LimiterMsg::Failed(e));
                }
            }
            drop(permit);
        });
    }
}

impl RedisLimiter {
    async fn healthy(&self, client: &Client) -> Result<(), String> {
        let timeout = Duration::from_millis(self.node.config().redis.command_timeout_ms.max(200));
        let opts = Options {
            timeout: Some(timeout),
            max_attempts: Some(1),
            ..Options::default()
        };
        let c = client.with_options(&opts);
        let _: String = c.ping(None).await.map_err(|e| e.to_string())?;
        let _: String = c.script_load(SCRIPT).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    fn publish(&self, myself: &ActorRef<LimiterMsg>, state: &mut LimiterState) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let config = self.node.config();
        let handle = Arc::new(RedisHandle {
            client: state.connection.client.clone(),
            prefix: config.redis.key_prefix.clone(),
            timeout: Duration::from_millis(config.redis.command_timeout_ms),
            tx,
            actor: myself.clone(),
        });
        let batcher = OwnedTask::spawn(
            batcher(
                self.node.clone(),
                myself.clone(),
                state.connection.client.clone(),
                state.sha.clone(),
                rx,
            ),
            || {},
        );
        self.node.limiter.publish_redis(Some(handle.clone()));
        state.published = Some(Published {
            node: self.node.clone(),
            handle,
            _batcher: batcher,
        });
        tracing::info!("rate limiter: deciding in redis");
    }

    fn withdraw(&self, state: &mut LimiterState, error: String) {
        if state.published.take().is_some() {
            tracing::warn!(%error, "rate limiter: redis unusable, deciding locally");
        }
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
        let timeout = Duration::from_millis(config.redis.command_timeout_ms);
        let client = client(&config.redis.url, timeout)?;
        let task = client.connect();
        let mut state = LimiterState {
            connection: Connection { client, task },
            sha: Arc::from(fred::util::sha1_hash(SCRIPT)),
            published: None,
        };
        // Decide in Redis from the first request when Redis is up: the
        // listener starts after the limiter.
        if self.healthy(&state.connection.client).await.is_ok() {
            self.publish(&myself, &mut state);
        }
        let every = Duration::from_millis(config.redis.health_interval_ms);
        myself.send_after(every, || LimiterMsg::Tick);
        myself.send_after(SWEEP_EVERY, || LimiterMsg::Sweep);
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
                match self.healthy(&state.connection.client).await {
                    Ok(()) if state.published.is_none() => self.publish(&myself, state),
                    Ok(()) => {}
                    Err(e) => self.withdraw(state, e),
                }
                let every = Duration::from_millis(self.node.config().redis.health_interval_ms);
                myself.send_after(every, || LimiterMsg::Tick);
            }
            LimiterMsg::Sweep => {
                self.node.limiter.local().sweep();
                myself.send_after(SWEEP_EVERY, || LimiterMsg::Sweep);
            }
            LimiterMsg::Failed(e) => self.withdraw(state, e),
        }
        Ok(())
    }
}
