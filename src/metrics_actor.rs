//! The metrics sampler (`diem/metrics`, a task child): every second it
//! samples the gauges, so that what `/metrics`, `ctl stats` and the
//! observer show is at most a second old even when nobody renders them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorProcessingErr;
use supervisors::TaskResult;

use crate::limiter::backend::Backend;
use crate::metrics::{rss_bytes, BackendLabel, RedisInfoLabel, SourceLabel, StateLabel};
use crate::node::Node;
use crate::store::snapshot::Source;

const EVERY: Duration = Duration::from_secs(1);

/// The sampler's loop (it needs no set-up).
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    Ok(async move {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            sample_gauges(&node);
        }
    })
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Samples the gauges (pool, workers, corpus, limiter, memory).
pub(crate) fn sample_gauges(node: &Node) {
    let g = &node.metrics.gauges;
    let pg = node.pg.status();
    g.postgres_up.set(i64::from(pg.ready));
    for (state, n) in [
        ("max", pg.max_size),
        ("open", pg.size),
        ("idle", pg.available),
        ("waiting", pg.waiting),
    ] {
        g.postgres_pool
            .get_or_create(&StateLabel { state })
            .set(gauge_value(n));
    }
    g.workers.set(gauge_value(node.workers.size()));
    g.workers_desired.set(gauge_value(node.workers.target().get()));
    g.in_flight.set(gauge_value(node.workers.in_flight()));
    g.connections_open.set(gauge_value(node.http.open_connections()));
    let corpus = node.corpus.status();
    g.corpus_sentences.set(gauge_value(corpus.sentences));
    let from_pg = matches!(corpus.source, Source::Postgres { .. });
    for (source, on) in [("postgres", from_pg), ("embedded", !from_pg)] {
        g.corpus_source
            .get_or_create(&SourceLabel { source })
            .set(i64::from(on));
    }
    let backend = node.limiter.backend();
    for b in Backend::ALL {
        g.limiter_backend
            .get_or_create(&BackendLabel { backend: b.as_str() })
            .set(i64::from(backend == b));
    }
    let (topology, tls) = node.with_config(|c| (c.redis.topology(), c.redis.uses_tls()));
    let hot_path = node.limiter.hot_path();
    let flag = |b: bool| if b { "true" } else { "false" };
    for t in ["standalone", "sentinel", "cluster"] {
        for (tl, hp) in [(false, false), (false, true), (true, false), (true, true)] {
            let now = t == topology && tl == tls && hp == hot_path;
            let label = RedisInfoLabel {
                topology: t,
                tls: flag(tl),
                hot_path: flag(hp),
            };
            // Only label sets that were ever current are kept.
            if now {
                g.redis_info.get_or_create(&label).set(1);
            } else if let Some(gauge) = g.redis_info.get(&label) {
                gauge.set(0);
            }
        }
    }
    let short = node.limiter.wait_short();
    g.redis_wait_short
        .inc_by(short.saturating_sub(g.redis_wait_short.get()));
    g.corpus_rows_read
        .set(i64::try_from(corpus.rows_read).unwrap_or(i64::MAX));
    g.limiter_local_keys.set(gauge_value(node.limiter.local().len()));
    g.limiter_deny_cache_keys
        .set(gauge_value(node.limiter.deny_cache().len()));
    if let Some(rss) = rss_bytes() {
        g.rss_bytes.set(i64::try_from(rss).unwrap_or(i64::MAX));
    }
    g.uptime_seconds
        .set(i64::try_from(node.started_at.elapsed().as_secs()).unwrap_or(i64::MAX));
}
