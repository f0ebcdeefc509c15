//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::atomic::Ordering;

use hyper::header::HeaderValue;
use hyper::StatusCode;

use crate::api::response::{body, JSON, TEXT};
use crate::health::readiness;
use crate::limiter::Backend;
use crate::metrics::{gauge, rss_bytes};
use crate::node::Node;
use crate::store::snapshot::Source;
use crate::workers::job::HttpResponse;

/// `/healthz`: the process answers. (The connection answers it itself,
/// without a worker, so that an overloaded pool is not mistaken for a
/// dead process.)
pub fn healthz() -> HttpResponse {
    body(StatusCode::OK, TEXT, "ok\n")
}

/// `/readyz`: 200 when ready, else 503; the report as JSON either way.
pub async fn readyz(node: &Node) -> HttpResponse {
    let report = readiness(node).await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    body(status, JSON, serde_json::to_vec(&report).unwrap_or_default())
}

/// Samples the gauges (pool, workers, corpus, limiter, memory).
pub fn sample_gauges(node: &Node) {
    let pg = node.pg.status();
    gauge("diem_postgres_up", &[], f64::from(u8::from(pg.ready)));
    for (state, n) in [
        ("max", pg.max_size),
        ("open", pg.size),
        ("idle", pg.available),
        ("waiting", pg.waiting),
    ] {
        gauge(
            "diem_postgres_pool_connections",
            &[("state", state.into())],
            n as f64,
        );
    }
    gauge("diem_workers", &[], node.workers.size() as f64);
    gauge(
        "diem_workers_desired",
        &[],
        node.desired_workers.load(Ordering::Relaxed) as f64,
    );
    gauge("diem_requests_in_flight", &[], node.workers.in_flight() as f64);
    gauge(
        "diem_http_connections_open",
        &[],
        node.http.open_connections() as f64,
    );
    let corpus = node.corpus.status();
    gauge("diem_corpus_sentences", &[], corpus.sentences as f64);
    let from_pg = matches!(corpus.source, Source::Postgres { .. });
    for (source, on) in [("postgres", from_pg), ("embedded", !from_pg)] {
        gauge(
            "diem_corpus_source",
            &[("source", source.into())],
            f64::from(u8::from(on)),
        );
    }
    let backend = node.limiter.backend();
    for b in [Backend::Redis, Backend::Local] {
        gauge(
            "diem_limiter_backend",
            &[("backend", b.as_str().into())],
            f64::from(u8::from(backend == b)),
        );
    }
    gauge("diem_limiter_local_keys", &[], node.limiter.local().len() as f64);
    if let Some(rss) = rss_bytes() {
        gauge("process_resident_memory_bytes", &[], rss as f64);
    }
    gauge(
        "diem_uptime_seconds",
        &[],
        node.started_at.elapsed().as_secs_f64(),
    );
}

/// `/metrics`: Prometheus text.
pub fn metrics(node: &Node) -> HttpResponse {
    sample_gauges(node);
    node.metrics.upkeep();
    body(
        StatusCode::OK,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        node.metrics.render(),
    )
}
