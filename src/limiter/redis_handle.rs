//! What requests use while Redis is healthy: the [`RedisHandle`] the Redis
//! limiter actor ([`redis_limiter`](super::redis_limiter)) publishes in the
//! node's [`Limiter`](super::Limiter), the GCRA script Redis runs, and the
//! messages through which requests report a failed Redis to the actor.
//!
//! A request's decision costs one plain Redis command in the common case — a
//! client not seen within its window — sent with the other requests' on
//! the hot-path connection ([`pipe`](super::pipe): one `write` per batch)
//! ([`RedisHandle::check`]). The same command tells a refused client (its
//! key's TAT is returned, and refusing changes nothing in Redis): that
//! refusal is decided from it at once. Keys Redis holds for clients with
//! budget left go to the actor's batcher, which decides all of them in one
//! `EVALSHA` of [`SCRIPT`]. Every allowed request is decided by Redis,
//! atomically per key.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Client, ClientLike, Expiration, KeysInterface, LuaInterface, Options, SetOptions};
use ipnet::IpNet;
use ractor_cluster::RactorMessage;
use supervisors::Counted;
use tokio::sync::{mpsc, oneshot};

pub use crate::limiter::gcra::now_us;
use crate::limiter::gcra::{decide, peek, Params, Throttle};
use crate::limiter::key::{push_key_text, KEY_TEXT_MAX};
use crate::limiter::pipe::PipeError;
use crate::limiter::pipes::{is_redirect, Pipes};
use crate::limiter::replica_wait::ReplicaWait;
use crate::limiter::slot::slot;

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
    -- A TAT beyond the tolerance comes from another limit (a reload):
    -- judge the client as full under the limit in effect.
    local clamped = false
    if tat > now + tolerance then
      tat = now + tolerance
      clamped = true
    end
    local new_tat = math.max(tat, now) + increment
    local diff = now - (new_tat - tolerance)
    if diff < 0 then
      limited = 1
      if increment <= tolerance then retry = -diff else retry = -1 end
      ttl = tat - now
      if clamped then
        redis.call('SET', key, tat, 'PX', math.max(1, math.ceil(ttl / 1000)))
      end
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

/// Attempts fred makes of one command: the first, and following up to two
/// redirections of a Redis Cluster (`MOVED`, then `ASK` during a
/// migration). Bounded in time by `redis.command_timeout` all the same.
pub const REDIRECT_ATTEMPTS: u32 = 3;

/// Tells Redis the TATs local decisions gave clients while it could not
/// decide, before it decides again: `KEYS` the clients' keys, `ARGV[i]`
/// the TAT of `KEYS[i]` (µs), `ARGV[#KEYS + 1]` now (µs). A TAT Redis holds
/// further ahead (another node's decisions) is kept: the later one wins.
pub const WRITE_BACK: &str = r#"
local now = tonumber(ARGV[#KEYS + 1])
local written = 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(ARGV[i])
  local held = tonumber(redis.call('GET', key) or '0') or 0
  if tat > held and tat > now then
    redis.call('SET', key, tat, 'PX', math.max(1, math.ceil((tat - now) / 1000)))
    written = written + 1
  end
end
return written
"#;

/// A request whose key Redis holds: decided by the script, in a batch.
#[derive(Debug)]
pub struct Pending {
    /// The Redis key.
    pub key: String,
    /// Where the decision goes, with the time (µs) it was made at.
    pub reply: oneshot::Sender<(Throttle, i64)>,
}

/// Redis's decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The decision.
    pub throttle: Throttle,
    /// When (µs, the deciding node's clock) it was made: the key's TAT in
    /// Redis is then `at + throttle.reset_after_us` (for the deny cache,
    /// and for the local fallback to continue from).
    pub at: i64,
}

impl Checked {
    /// The key's TAT after the decision (µs).
    pub fn tat(&self) -> i64 {
        self.at.saturating_add(self.throttle.reset_after_us)
    }
}

/// What requests use while Redis is healthy: the client (for the fast
/// path) and the queue to the batcher (for keys Redis holds).
#[derive(Debug)]
pub struct RedisHandle {
    client: Client,
    pipes: Option<Pipes>,
    prefix: String,
    timeout: Duration,
    tx: mpsc::Sender<Pending>,
    actor: Counted<LimiterMsg>,
    generation: u64,
    wait: Option<ReplicaWait>,
}

impl RedisHandle {
    /// A handle deciding on `pipe` (or, without one, `client`; keys
    /// `<prefix>rl:<address>`), giving up on a reply after `timeout`,
    /// sending held keys to the batcher on `tx` and failures to `actor`
    /// (tagged with `generation`: the actor's count of handles published),
    /// waiting for replicas after fred's writes with `wait` (the pipes
    /// wait by themselves).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        pipes: Option<Pipes>,
        prefix: String,
        timeout: Duration,
        tx: mpsc::Sender<Pending>,
        actor: Counted<LimiterMsg>,
        generation: u64,
        wait: Option<ReplicaWait>,
    ) -> Self {
        Self {
            client,
            pipes,
            prefix,
            timeout,
            tx,
            actor,
            generation,
            wait,
        }
    }

    /// Whether it decides on the hot-path connection.
    pub fn has_pipe(&self) -> bool {
        self.pipes.is_some()
    }

    /// `client`'s Redis key.
    fn key(&self, client: &IpNet) -> String {
        redis_key(&self.prefix, client)
    }

    /// The state of `client`'s key in Redis, spending nothing; `None` if
    /// Redis does not answer.
    pub async fn peek(&self, client: &IpNet, params: &Params) -> Option<Throttle> {
        let get = self.client.get::<Option<i64>, _>(self.key(client));
        let tat = tokio::time::timeout(self.timeout, get).await.ok()?.ok()?;
        let now = now_us();
        Some(peek(params, tat.filter(|&t| t > now), now))
    }

    /// Deletes `client`'s key in Redis; whether Redis answered.
    pub async fn forget(&self, client: &IpNet) -> bool {
        let del = self.client.del::<i64, _>(self.key(client));
        matches!(tokio::time::timeout(self.timeout, del).await, Ok(Ok(_)))
    }

    /// `SET key tat NX GET PX px` through fred (without the batching
    /// connection): the TAT Redis held, if any; with `redis.wait_replicas`,
    /// once the replicas hold what it wrote.
    async fn set_nx_get_fred(&self, key: &str, tat: i64, px: i64) -> Result<Option<i64>, String> {
        let set = self.client.set::<Option<i64>, _, _>(
            key,
            tat,
            Some(Expiration::PX(px)),
            Some(SetOptions::NX),
            true,
        );
        let held = match tokio::time::timeout(self.timeout, set).await {
            Ok(Ok(held)) => held,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no reply within {:?}", self.timeout)),
        };
        if let (Some(wait), None) = (&self.wait, held) {
            wait.after_fred(&self.client, key).await?;
        }
        Ok(held)
    }

    /// Redis's decision for `client`, or `None` if Redis failed (decide
    /// locally then; the actor is told and withdraws the handle).
    ///
    /// One `SET key <now+emission> NX GET PX <emission>`: for a key Redis
    /// does not hold (a client not seen within its window) that *is* the
    /// GCRA's decision — allowed, with exactly the TAT and expiry the script
    /// would store — made atomically by Redis in one plain command. For a
    /// key Redis holds, the `GET` returns its TAT and `NX` changes nothing:
    /// if that TAT refuses the request (under the limit in effect), the
    /// script would refuse it too and write nothing, so the refusal is
    /// decided here; otherwise the key goes to the batcher, which decides
    /// all such keys in one `EVALSHA` of [`SCRIPT`].
    /// `now` is the node's clock in µs ([`now_us`]), read once by the caller.
    pub async fn check(&self, client: &IpNet, params: &Params, now: i64) -> Option<Checked> {
        let key = self.key(client);
        let emission = params.emission_us();
        let px = (emission + 999) / 1_000;
        let tat = now.saturating_add(emission);
        let held = match &self.pipes {
            // The key moves into the command: a held key (rare next to new
            // ones) builds its name again for the batcher.
            Some(pipes) => match pipes.for_key(&key).set_nx_get(key, tat, px).await {
                // The slot moved: fred follows the redirection, and the
                // actor reads the slot map again.
                Err(PipeError::Answered(e)) if is_redirect(&e) => {
                    let _ = self.actor.send(LimiterMsg::Moved);
                    Box::pin(self.set_nx_get_fred(&self.key(client), tat, px)).await
                }
                other => other.map_err(|e| e.to_string()),
            },
            // Boxed: fred's future is kilobytes, and this path is the
            // exception (no batching connection), so the common one should
            // not carry its size.
            None => Box::pin(self.set_nx_get_fred(&key, tat, px)).await,
        };
        match held {
            Ok(None) => Some(Checked {
                throttle: decide(params, None, now, 1).0,
                at: now,
            }),
            Ok(Some(tat)) => {
                let within = tat <= now.saturating_add(params.tolerance_us());
                let (throttle, _) = decide(params, Some(tat).filter(|&t| t > now), now, 1);
                if throttle.limited && within {
                    return Some(Checked { throttle, at: now });
                }
                let (reply, rx) = oneshot::channel();
                let key = self.key(client);
                self.tx.try_send(Pending { key, reply }).ok()?;
                let (throttle, at) = rx.await.ok()?;
                Some(Checked { throttle, at })
            }
            Err(e) => {
                let _ = self.actor.send(LimiterMsg::Failed(e, self.generation));
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

/// A Redis round trip that failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    /// Redis (or the connection to it) failed.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// The hot-path connection failed, or Redis answered its command with
    /// an error.
    #[error(transparent)]
    Pipe(#[from] PipeError),
    /// Fewer replicas than `redis.wait_replicas` acknowledged a write.
    #[error("{0}")]
    Short(String),
    /// Redis answered something the script does not return.
    #[error("unexpected reply of {got} numbers for {keys} keys")]
    Reply {
        /// Numbers received.
        got: usize,
        /// Keys asked.
        keys: usize,
    },
}

/// `<prefix>rl:<key text>`: a client's Redis key, in one allocation.
fn redis_key(prefix: &str, client: &IpNet) -> String {
    let mut key = String::with_capacity(prefix.len() + 3 + KEY_TEXT_MAX);
    key.push_str(prefix);
    key.push_str("rl:");
    push_key_text(&mut key, client);
    key
}

/// The script's `ARGV` for `params` (and `now`, µs, if given).
fn script_args(params: &Params, now: Option<i64>) -> Vec<i64> {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut args = vec![i(params.burst), i(params.count), i(params.period_secs), 1];
    args.extend(now);
    args
}

/// Writes `tats` (client key, TAT in µs) into Redis with [`WRITE_BACK`],
/// keys `<prefix>rl:<key text>`, in calls of at most `chunk` keys; how many
/// Redis took.
pub async fn write_back(
    client: &Client,
    prefix: &str,
    tats: &[(IpNet, i64)],
    chunk: usize,
    timeout: Duration,
    wait: Option<&ReplicaWait>,
) -> Result<i64, RedisFailure> {
    let opts = Options {
        timeout: Some(timeout),
        max_attempts: Some(REDIRECT_ATTEMPTS),
        ..Options::default()
    };
    let c = client.with_options(&opts);
    // A cluster takes one slot per call: one key per call (a switch back
    // is rare, the keys few).
    let chunk = if client.is_clustered() { 1 } else { chunk.max(1) };
    let mut written = 0;
    for part in tats.chunks(chunk) {
        let keys: Vec<String> = part.iter().map(|(ip, _)| redis_key(prefix, ip)).collect();
        let mut args: Vec<i64> = part.iter().map(|(_, tat)| *tat).collect();
        args.push(now_us());
        let first = keys.first().cloned().unwrap_or_default();
        let n: i64 = c.eval(WRITE_BACK, keys, args).await?;
        if let Some(wait) = wait {
            wait.after_fred(client, &first)
                .await
                .map_err(RedisFailure::Short)?;
        }
        written += n;
    }
    Ok(written)
}

/// Loads the script where `client` runs it: every primary of a Redis
/// Cluster (a node that lacks it answers `NOSCRIPT`), the one server
/// otherwise. Returns its SHA-1.
pub async fn load_script(client: &Client) -> Result<String, RedisFailure> {
    let sha: String = if client.is_clustered() {
        client.script_load_cluster(SCRIPT).await?
    } else {
        client.script_load(SCRIPT).await?
    };
    Ok(sha)
}

/// Runs the script for `keys` with `params` (and `now`, µs, if given)
/// through fred. On a Redis Cluster the keys are grouped by hash slot, one
/// call per slot (a script's keys must share one: `CROSSSLOT` otherwise),
/// the calls made concurrently, each routed by fred to the slot's primary.
/// With `wait`, each call is followed by `WAIT` on its node.
pub async fn eval(
    client: &Client,
    sha: &str,
    keys: Vec<String>,
    params: &Params,
    now: Option<i64>,
    timeout: Duration,
    wait: Option<&ReplicaWait>,
) -> Result<Vec<Throttle>, RedisFailure> {
    if !client.is_clustered() || keys.len() < 2 {
        return eval_one(client, sha, keys, params, now, timeout, wait).await;
    }
    per_slot(&keys, |group| {
        eval_one(client, sha, group, params, now, timeout, wait)
    })
    .await
}

/// Runs `call` once per hash slot of `keys` with that slot's keys (in
/// order), the calls concurrently, and puts each key's decision back in
/// its place: a script's keys must share one slot on a cluster.
async fn per_slot<F, Fut>(keys: &[String], call: F) -> Result<Vec<Throttle>, RedisFailure>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Throttle>, RedisFailure>>,
{
    let mut by_slot: Vec<(u16, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let s = slot(key);
        match by_slot.iter_mut().find(|(owner, _)| *owner == s) {
            Some((_, at)) => at.push(i),
            None => by_slot.push((s, vec![i])),
        }
    }
    let calls = by_slot
        .iter()
        .map(|(_, at)| call(at.iter().map(|&i| keys[i].clone()).collect()));
    let replies = futures::future::join_all(calls).await;
    let mut out = vec![None; keys.len()];
    for ((_, at), reply) in by_slot.iter().zip(replies) {
        for (&i, throttle) in at.iter().zip(reply?) {
            out[i] = Some(throttle);
        }
    }
    out.into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or(RedisFailure::Reply {
            got: 0,
            keys: keys.len(),
        })
}

/// One `EVALSHA` of the script for `keys` (one slot on a cluster), and
/// `WAIT` after it with `wait`.
async fn eval_one(
    client: &Client,
    sha: &str,
    keys: Vec<String>,
    params: &Params,
    now: Option<i64>,
    timeout: Duration,
    wait: Option<&ReplicaWait>,
) -> Result<Vec<Throttle>, RedisFailure> {
    let args = script_args(params, now);
    let opts = Options {
        timeout: Some(timeout),
        fail_fast: true,
        max_attempts: Some(REDIRECT_ATTEMPTS),
        ..Options::default()
    };
    let c = client.with_options(&opts);
    let n = keys.len();
    let first = keys.first().cloned().unwrap_or_default();
    let mut reply: Result<Vec<i64>, _> = c.evalsha(sha, keys.clone(), args.clone()).await;
    if matches!(&reply, Err(e) if e.details().contains("NOSCRIPT")) {
        load_script(client).await?;
        reply = c.evalsha(sha, keys, args).await;
    }
    let reply = reply?;
    if let Some(wait) = wait {
        wait.after_fred(client, &first)
            .await
            .map_err(RedisFailure::Short)?;
    }
    decode(&reply, n).ok_or(RedisFailure::Reply {
        got: reply.len(),
        keys: n,
    })
}

/// Runs the script for `keys` with `params` at `now` (µs) on the hot-path
/// connections, in the same write as the requests' commands queued with
/// them: one call, or on a cluster one call per hash slot (concurrently,
/// each to its slot's primary). If Redis no longer holds the script
/// (`NOSCRIPT`: flushed, or a restarted server), `client` loads it and the
/// call is made once more; a slot that moved (`MOVED`, `ASK`) is decided
/// through fred (and waits for replicas there with `wait`: the pipes wait
/// by themselves), and `moved` is called (the actor reads the slot map
/// again).
#[allow(clippy::too_many_arguments)]
pub async fn eval_on_pipes(
    pipes: &Pipes,
    client: &Client,
    moved: &(dyn Fn() + Send + Sync),
    sha: &Arc<str>,
    keys: Vec<String>,
    params: &Params,
    now: i64,
    timeout: Duration,
    wait: Option<&ReplicaWait>,
) -> Result<Vec<Throttle>, RedisFailure> {
    if !pipes.is_cluster() || keys.len() < 2 {
        return eval_group(pipes, client, moved, sha, keys.into(), params, now, timeout, wait).await;
    }
    per_slot(&keys, |group| {
        eval_group(
            pipes,
            client,
            moved,
            sha,
            group.into(),
            params,
            now,
            timeout,
            wait,
        )
    })
    .await
}

/// One call of the script for `keys` (one slot on a cluster) on the
/// connection of their slot.
#[allow(clippy::too_many_arguments)]
async fn eval_group(
    pipes: &Pipes,
    client: &Client,
    moved: &(dyn Fn() + Send + Sync),
    sha: &Arc<str>,
    keys: Arc<[String]>,
    params: &Params,
    now: i64,
    timeout: Duration,
    wait: Option<&ReplicaWait>,
) -> Result<Vec<Throttle>, RedisFailure> {
    let n = keys.len();
    let Some(first) = keys.first() else {
        return Ok(Vec::new());
    };
    let pipe = pipes.for_key(first);
    let args = || script_args(params, Some(now));
    let mut reply = pipe.evalsha(sha.clone(), keys.clone(), args()).await;
    if matches!(&reply, Err(PipeError::Answered(e)) if e.starts_with("NOSCRIPT")) {
        // Boxed: fred's future is large and this is the exception.
        Box::pin(load_script(client)).await?;
        reply = pipe.evalsha(sha.clone(), keys.clone(), args()).await;
    }
    if matches!(&reply, Err(PipeError::Answered(e)) if is_redirect(e)) {
        moved();
        return Box::pin(eval_one(
            client,
            sha,
            keys.to_vec(),
            params,
            Some(now),
            timeout,
            wait,
        ))
        .await;
    }
    let reply = reply?;
    decode(&reply, n).ok_or(RedisFailure::Reply {
        got: reply.len(),
        keys: n,
    })
}

/// Messages of the Redis limiter actor.
#[derive(Debug, RactorMessage)]
pub enum LimiterMsg {
    /// Health check (internal timer).
    Tick,
    /// Sweep the local store (internal timer).
    Sweep,
    /// A Redis reply failed or came late (from a request, the batcher or a
    /// hot-path connection of the handle of that generation; one of a
    /// handle already replaced is ignored).
    Failed(String, u64),
    /// A cluster's slot moved (`MOVED`/`ASK` on a hot-path connection):
    /// read the slot map again and connect anew.
    Moved,
    /// The Sentinels switched the primary (`+switch-master`,
    /// [`switch_watch`](super::switch_watch)): connect to it now.
    Switched {
        /// The new primary's `ip:port`.
        primary: String,
        /// The Sentinel that announced it (which knows it: asked first).
        sentinel: fred::types::config::Server,
    },
}
