//! Per-client rate limiting: GCRA with redis-cell's `CL.THROTTLE`
//! semantics, decided in Redis and, while Redis is unreachable, in process.
//!
//! [`Limiter`] is what a request sees: one call, [`Limiter::decide`] (of a [`Check`] made from the settings in effect), that
//! answers from Redis when the Redis limiter actor
//! ([`redis_limiter`]) has published a healthy connection, and from the
//! [`local`] store otherwise — including for the requests of a Redis round
//! trip that failed. Requests never wait on a dead Redis for longer than
//! `redis.command_timeout`, and a Redis outage is never a 5xx.
//!
//! A Redis decision costs one plain command for a client Redis does not
//! hold, or that it refuses (sent with the commands of concurrent requests
//! in one write on the hot-path connection, [`pipe`]), and a share of one
//! batched `EVALSHA` for a client it holds with budget left; every allowed
//! request is still decided by Redis, atomically per key (see
//! [`redis_limiter`]). A client Redis refused is answered from the
//! [`deny_cache`] until its retry time, exactly as Redis would answer.

pub mod backend;
pub mod deny_cache;
pub mod fields;
pub mod gcra;
pub mod key;
pub mod key_hash;
pub(crate) mod last_error;
pub mod local;
pub mod pipe;
pub mod pipes;
pub mod redis_handle;
pub mod redis_limiter;
pub mod redis_tls;
pub mod replica_wait;
pub mod shards;
pub mod slot;
pub mod switch_watch;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use ipnet::IpNet;

use crate::config::ClientHeader;
use crate::config::LimiterConfig;
use crate::limiter::backend::Backend;
use crate::limiter::deny_cache::DenyCache;
use crate::limiter::fields::ratelimit_policy;
use crate::limiter::gcra::{Params, Throttle};
use crate::limiter::key::{key_text, limit_key};
use crate::limiter::local::LocalStore;
use crate::limiter::redis_handle::{now_us, RedisHandle};

/// The limiter settings that `reload` can change live.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterSettings {
    /// Whether requests are limited at all.
    pub enabled: bool,
    /// The GCRA parameters.
    pub params: Params,
    /// Peers whose forwarding header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The header trusted proxies name the client in.
    pub client_header: ClientHeader,
    /// IPv6 clients are limited by this prefix of their address.
    pub ipv6_prefix: u8,
    /// The `RateLimit-Policy` field of these parameters (made once).
    pub policy: hyper::header::HeaderValue,
    /// What one local admission costs, in emission intervals: the node's
    /// share of the fleet (`limiter.fleet_size`, at most `burst + 1`).
    pub local_cost: u64,
}

impl From<&LimiterConfig> for LimiterSettings {
    fn from(c: &LimiterConfig) -> Self {
        Self {
            policy: ratelimit_policy(c.burst, c.count, c.period.as_secs()),
            enabled: c.enabled,
            params: Params {
                burst: c.burst,
                count: c.count,
                period_secs: c.period.as_secs(),
            },
            trusted_proxies: c.trusted_proxies.clone(),
            client_header: c.client_header,
            ipv6_prefix: c.ipv6_prefix,
            local_cost: c.fleet_size.clamp(1, c.burst.saturating_add(1)),
        }
    }
}

/// A decision and where it was made.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// The decision.
    pub throttle: Throttle,
    /// Who decided.
    pub backend: Backend,
    /// When the request was decided (µs since the Unix epoch, this node's
    /// clock; the decision-history checker's time).
    pub at: i64,
    /// Whether it came from the deny cache (a refusal Redis made earlier,
    /// still in force: `backend` is then Redis).
    pub cached: bool,
}

/// What deciding one request needs of the limiter's settings, taken while
/// they are loaded (once per request, with the client's address), so that
/// the decision does not hold them.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    key: IpNet,
    params: Params,
    local_cost: u64,
}

impl Check {
    /// The check of a request from `client` under `settings`.
    pub fn new(settings: &LimiterSettings, client: IpAddr) -> Self {
        Self {
            key: limit_key(client, settings.ipv6_prefix),
            params: settings.params,
            local_cost: settings.local_cost,
        }
    }
}

/// A client's GCRA state, as `ctl limiter get` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientState {
    /// The key the client is limited by (an IPv6 client: its prefix).
    pub key: String,
    /// Which store answered.
    pub backend: Backend,
    /// Requests it may make at once now.
    pub remaining: u64,
    /// `max_burst + 1`.
    pub limit: u64,
    /// Seconds until it is back to a full burst.
    pub reset_secs: u64,
    /// Whether its next request would be refused.
    pub limited: bool,
}

/// The limiter as requests see it.
#[derive(Debug)]
pub struct Limiter {
    settings: ArcSwap<LimiterSettings>,
    local: LocalStore,
    deny: DenyCache,
    redis: ArcSwapOption<RedisHandle>,
    /// Why Redis does not decide now, as the Redis limiter actor last found.
    why_local: ArcSwapOption<String>,
    /// `WAIT`s that came back with fewer replicas than
    /// `redis.wait_replicas` ([`replica_wait`]).
    wait_short: Arc<AtomicU64>,
    /// Switches of the primary the Sentinels announced and the Redis
    /// limiter actor followed ([`switch_watch`]).
    switches: AtomicU64,
}

impl Limiter {
    /// A limiter with these settings, deciding locally until the Redis
    /// limiter actor publishes a connection.
    pub fn new(config: &LimiterConfig) -> Self {
        Self {
            settings: ArcSwap::from_pointee(LimiterSettings::from(config)),
            local: LocalStore::new(config.local_max_keys),
            deny: DenyCache::new(config.local_max_keys),
            redis: ArcSwapOption::empty(),
            why_local: ArcSwapOption::empty(),
            wait_short: Arc::default(),
            switches: AtomicU64::new(0),
        }
    }

    /// The count of short `WAIT`s, for the Redis limiter actor's
    /// [`ReplicaWait`](replica_wait::ReplicaWait) (kept across its
    /// incarnations).
    pub fn wait_short_counter(&self) -> Arc<AtomicU64> {
        self.wait_short.clone()
    }

    /// `WAIT`s that came back with fewer replicas than
    /// `redis.wait_replicas`, so far.
    pub fn wait_short(&self) -> u64 {
        self.wait_short.load(Ordering::Relaxed)
    }

    /// Counts a switch of the primary the Sentinels announced.
    pub fn count_switch(&self) {
        self.switches.fetch_add(1, Ordering::Relaxed);
    }

    /// Switches of the primary the Sentinels announced, so far.
    pub fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// The settings in effect.
    pub fn settings(&self) -> arc_swap::Guard<Arc<LimiterSettings>> {
        self.settings.load()
    }

    /// Replaces the settings (live reload). A changed limit empties the
    /// deny cache: its entries were Redis's answers under the old one.
    pub fn set_settings(&self, settings: LimiterSettings) {
        let old = self.settings.swap(Arc::new(settings));
        let new = self.settings.load();
        if old.params != new.params || old.ipv6_prefix != new.ipv6_prefix || old.enabled != new.enabled {
            self.deny.clear();
        }
    }

    /// The deny cache (for sweeping and stats).
    pub fn deny_cache(&self) -> &DenyCache {
        &self.deny
    }

    /// Which backend decides now.
    pub fn backend(&self) -> Backend {
        if self.redis.load().is_some() {
            Backend::Redis
        } else {
            Backend::Local
        }
    }

    /// The local store (for sweeping and stats).
    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// Publishes the Redis limiter actor's handle (`None` withdraws it).
    pub fn publish_redis(&self, handle: Option<Arc<RedisHandle>>) {
        if handle.is_some() {
            self.why_local.store(None);
        }
        self.redis.store(handle);
    }

    /// Whether Redis decides on the hot-path connection (`false` while it
    /// does not decide, or decides through fred alone).
    pub fn hot_path(&self) -> bool {
        self.redis.load().as_ref().is_some_and(|r| r.has_pipe())
    }

    /// Says why Redis does not decide (the error that made the Redis
    /// limiter actor withdraw its handle, or keep it withdrawn).
    pub fn set_why_local(&self, why: String) {
        self.why_local.store(Some(Arc::new(why)));
    }

    /// Why Redis does not decide now, if it does not and the Redis limiter
    /// actor has said why.
    pub fn why_local(&self) -> Option<Arc<String>> {
        if self.redis.load().is_some() {
            return None;
        }
        self.why_local.load_full()
    }

    /// Withdraws `handle` if it is the one published (a newer incarnation's
    /// handle is left alone).
    pub fn unpublish_redis(&self, handle: &Arc<RedisHandle>) {
        let current = self.redis.load();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, handle)) {
            self.redis.compare_and_swap(&*current, None);
        }
    }

    /// The key `client` is limited by under the settings in effect.
    pub fn key_of(&self, client: IpAddr) -> IpNet {
        limit_key(client, self.settings.load().ipv6_prefix)
    }

    /// Decides one request, as `check` says (made while the caller had
    /// the settings loaded): the deny cache, Redis when it decides, else
    /// the local store.
    pub async fn decide(&self, check: Check) -> Decision {
        let Check {
            key,
            params,
            local_cost,
        } = check;
        let now = now_us();
        if let Some(throttle) = self.deny.check(&key, &params, now) {
            return Decision {
                throttle,
                backend: Backend::Redis,
                cached: true,
                at: now,
            };
        }
        let redis = self.redis.load_full();
        if let Some(redis) = redis {
            if let Some(checked) = redis.check(&key, &params, now).await {
                if checked.throttle.limited {
                    self.deny
                        .refused(key, checked.tat(), checked.at, &checked.throttle);
                }
                // What Redis said is where the local fallback continues
                // from if Redis fails: no fresh budget on a switch.
                self.local.remember(key, checked.tat(), checked.at);
                return Decision {
                    throttle: checked.throttle,
                    backend: Backend::Redis,
                    cached: false,
                    at: checked.at,
                };
            }
        }
        Decision {
            throttle: self.local.check_costing(key, &params, local_cost),
            backend: Backend::Local,
            cached: false,
            at: now,
        }
    }

    /// The state of `client`'s key without spending anything
    /// (`CL.THROTTLE` with quantity 0), from Redis when it decides.
    pub async fn peek(&self, client: IpAddr) -> ClientState {
        let settings = self.settings.load_full();
        let key = limit_key(client, settings.ipv6_prefix);
        let redis = self.redis.load_full();
        let (throttle, backend) = match redis {
            Some(redis) => match redis.peek(&key, &settings.params).await {
                Some(t) => (t, Backend::Redis),
                None => (self.local.peek(key, &settings.params), Backend::Local),
            },
            None => (self.local.peek(key, &settings.params), Backend::Local),
        };
        ClientState {
            key: key_text(&key),
            backend,
            remaining: throttle.remaining,
            limit: throttle.limit,
            reset_secs: throttle.reset_secs(),
            limited: throttle.limited,
        }
    }

    /// Forgets `client`'s key in Redis and locally: its next request is a
    /// new client's. Returns the key and whether Redis was reached.
    pub async fn forget(&self, client: IpAddr) -> (String, bool) {
        let key = self.key_of(client);
        self.local.forget(&key);
        self.deny.forget(&key);
        let in_redis = match self.redis.load_full() {
            Some(redis) => redis.forget(&key).await,
            None => false,
        };
        (key_text(&key), in_redis)
    }
}
