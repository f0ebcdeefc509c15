//! `/healthz`, `/readyz` and `/metrics`.

use hyper::header::HeaderValue;
use hyper::StatusCode;

use crate::api::request::HttpResponse;
use crate::api::response::{body, JSON, TEXT};
use crate::health::readiness;
use crate::metrics_actor::sample_gauges;
use crate::node::Node;

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

/// `/metrics`: Prometheus text.
pub(crate) fn metrics(node: &Node) -> HttpResponse {
    sample_gauges(node);
    body(
        StatusCode::OK,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
        node.metrics.render(),
    )
}
