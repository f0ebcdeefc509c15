//! Fault injection in the real request path (cargo feature `faults`, off by
//! default; the test suite and the chaos bench build with it).
//!
//! A request carrying `X-Diem-Fault: panic` makes the handler of the worker
//! that takes it panic; `X-Diem-Fault: stall=MS` makes it sleep MS
//! milliseconds (at most 60 s) before answering. A binary built without the
//! feature ignores the header.

use std::time::Duration;

use hyper::header::HeaderMap;

/// The header that selects a fault.
pub const HEADER: &str = "x-diem-fault";

/// Applies the fault the headers ask for, if any.
pub async fn inject(headers: &HeaderMap) {
    let Some(fault) = headers.get(HEADER).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if fault == "panic" {
        panic!("injected fault: panic in a request handler");
    }
    if let Some(ms) = fault.strip_prefix("stall=").and_then(|ms| ms.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
}
