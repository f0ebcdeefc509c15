//! `redis.wait_replicas`: Redis's `WAIT` after the limiter's writes, for
//! users who want no decision lost when a replica is promoted.
//!
//! Redis replicates asynchronously: a primary that dies may take the last
//! decisions it made with it, and the replica promoted in its place hands
//! out that budget again (docs/reliability.md counts it). With
//! `redis.wait_replicas = N` each batch of the hot-path connection ends
//! with `WAIT N <redis.wait_timeout>`, and its requests are answered only
//! when Redis says how many replicas hold the batch's writes: one more
//! round trip to the replicas per batch (not per request). Decisions made
//! through fred (a slot that moved, a URL without a hot path, the
//! write-back after a switch) are followed by a `WAIT` on the node that
//! made them.
//!
//! A decision counts only when the replicas hold it. When fewer
//! acknowledge within the timeout (a replica down, or lagging), the wait is
//! short: it is counted (`ctl stats`: `limiter.redis.wait_short`,
//! `/metrics`: `diem_redis_wait_short_total`) and treated as a failure of
//! Redis — the batch's requests decide locally (the node's share of the
//! fleet, `limiter.fleet_size`), and so do the next ones until the health
//! check, which waits for the replicas too, passes again. A client never
//! gets a Redis decision that a failover could forget; the price is that
//! losing the replicas makes the limiter local: with one replica, ask for
//! `wait_replicas = 1` only if its loss may cost exactness; with two,
//! `wait_replicas = 1` tolerates one down.
//!
//! ```
//! use diem::limiter::replica_wait::ReplicaWait;
//!
//! let wait = ReplicaWait::new(1, std::time::Duration::from_millis(50), Default::default());
//! let mut out = Vec::new();
//! wait.command(&mut out);
//! assert_eq!(out, b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$2\r\n50\r\n");
//! assert!(wait.acknowledged(1).is_ok());
//! let short = wait.acknowledged(0).unwrap_err();
//! assert_eq!(short, "WAIT: 0 of 1 replicas acknowledged within 50 ms (redis.wait_replicas)");
//! assert_eq!(wait.short(), 1);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, ClusterInterface, ServerInterface};

use crate::limiter::slot::slot;

/// `WAIT replicas timeout` after the limiter's writes.
#[derive(Clone, Debug)]
pub struct ReplicaWait {
    replicas: u32,
    timeout_ms: u64,
    short: Arc<AtomicU64>,
}

impl ReplicaWait {
    /// Waits for `replicas` replicas, at most `timeout` (at least 1 ms:
    /// `WAIT … 0` would block for ever), counting the waits that ended
    /// with fewer in `short`.
    pub fn new(replicas: u32, timeout: Duration, short: Arc<AtomicU64>) -> Self {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        Self {
            replicas,
            timeout_ms,
            short,
        }
    }

    /// Appends the RESP `WAIT` command.
    pub fn command(&self, out: &mut Vec<u8>) {
        let mut n = itoa::Buffer::new();
        let mut ms = itoa::Buffer::new();
        let (n, ms) = (n.format(self.replicas), ms.format(self.timeout_ms));
        out.extend_from_slice(b"*3\r\n$4\r\nWAIT\r\n$");
        out.extend_from_slice(itoa::Buffer::new().format(n.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"\r\n$");
        out.extend_from_slice(itoa::Buffer::new().format(ms.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(ms.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Notes `WAIT`'s reply, how many replicas acknowledged: an error
    /// saying so when fewer than asked (counted as short).
    pub fn acknowledged(&self, replicas: i64) -> Result<(), String> {
        if replicas >= i64::from(self.replicas) {
            return Ok(());
        }
        self.short.fetch_add(1, Ordering::Relaxed);
        Err(format!(
            "WAIT: {replicas} of {} replicas acknowledged within {} ms (redis.wait_replicas)",
            self.replicas, self.timeout_ms
        ))
    }

    /// Waits that ended with fewer replicas than asked, so far.
    pub fn short(&self) -> u64 {
        self.short.load(Ordering::Relaxed)
    }

    /// `WAIT` through fred after a write of `key` it made: on a cluster, on
    /// the primary of the key's slot (`WAIT` counts the writes of the
    /// connection it is sent on). A wait that fails counts as short.
    pub async fn after_fred(&self, client: &Client, key: &str) -> Result<(), String> {
        let timeout = i64::try_from(self.timeout_ms).unwrap_or(i64::MAX);
        let replicas = i64::from(self.replicas);
        let acked: Result<i64, _> = if client.is_clustered() {
            match client
                .cached_cluster_state()
                .and_then(|s| s.get_server(slot(key)).cloned())
            {
                Some(server) => client.with_cluster_node(server).wait(replicas, timeout).await,
                None => return self.acknowledged(0),
            }
        } else {
            client.wait(replicas, timeout).await
        };
        self.acknowledged(acked.unwrap_or(0))
    }
}
