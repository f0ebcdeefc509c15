//! `/healthz`, `/readyz` and `/metrics`.

use hyper::header::HeaderValue;
use hyper::StatusCode;

use crate::api::request::HttpResponse;
use crate::api::response::{body, JSON, TEXT};
use crate::health::readiness;
use crate::limiter::backend::Backend;
use crate::metrics::{rss_bytes, BackendLabel, SourceLabel, StateLabel};
use crate::node::Node;
use crate::store::snapshot::Source;

/// `/healthz`: the process answers. (The connection answers it itself,
/// without a worker, so that an overloaded pool is not mistaken for a
/// dead process.)
pub(crate) fn healthz() -> HttpResponse {
    body(StatusCode::OK, TEXT, "ok\n")
}

/// `/readyz`: 200 when ready, else 503; the report as JSON either way.
pub(crate) async fn readyz(node: &Node) -> HttpResponse {
    let report = readiness(node).await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    body(status, JSON, serde_json::to_vec(&report).unwrap_or_default())
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
    g.limiter_local_keys.set(gauge_value(node.limiter.local().len()));
    g.limiter_deny_cache_keys
        .set(gauge_value(node.limiter.deny_cache().len()));
    if let Some(rss) = rss_bytes() {
        g.rss_bytes.set(i64::try_from(rss).unwrap_or(i64::MAX));
    }
    g.uptime_seconds
        .set(i64::try_from(node.started_at.elapsed().as_secs()).unwrap_or(i64::MAX));
}

/// `/metrics`: Prometheus text.
pub(crate) fn metrics(node: &Node) -> HttpResponse {
    sample_gauges(node);
    body(
        StatusCode::OK,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
        node.metrics.render(),
    )
}
