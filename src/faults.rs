//! Fault injection (cargo feature `faults`, off by default; the test suite
//! and the chaos bench build with it). A binary built without the feature
//! has none of this.
//!
//! * In the request path: a request carrying `X-Diem-Fault: panic` makes
//!   the handler of the worker that takes it panic; `X-Diem-Fault:
//!   stall=MS` makes it sleep MS milliseconds (at most 60 s) first.
//! * `X-Diem-Fault: wedge-root` wedges the root supervisor: it is asked to
//!   start a child whose start never completes, so it never serves its
//!   mailbox again (for the systemd watchdog test: the pings must stop).
//! * On every limited answer: `X-Diem-Decided: <store>;at=<µs>` — the
//!   store that decided (`redis`, `redis-cached` for the deny cache, `local`)
//!   and when (the node's clock, µs since the Unix epoch), for the tests'
//!   decision-history checker.
//! * At start: with `FAULT_CRASH_AT_START=PATH@N` in the environment, the
//!   child at PATH (e.g. `diem/store/corpus`) fails to start from its N-th
//!   incarnation on, so its supervisor's restarts fail until it gives up.

use std::time::Duration;

use hyper::header::HeaderMap;

/// The header that selects a fault.
pub(crate) const HEADER: &str = "x-diem-fault";

/// `X-Diem-Decided` for `decision`.
pub(crate) fn decided(headers: &mut HeaderMap, decision: &crate::limiter::Decision) {
    use crate::limiter::backend::Backend;
    let store = match (decision.backend, decision.cached) {
        (Backend::Redis, false) => "redis",
        (Backend::Redis, true) => "redis-cached",
        (Backend::Local, _) => "local",
    };
    if let Ok(value) = hyper::header::HeaderValue::from_str(&format!("{store};at={}", decision.at)) {
        headers.insert("x-diem-decided", value);
    }
}

/// Applies the fault the headers ask for, if any.
pub(crate) async fn inject(node: &crate::node::Node, headers: &HeaderMap) {
    let Some(fault) = headers.get(HEADER).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if fault == "wedge-root" {
        if let Some(root) = node.root().cloned() {
            let never = supervisors::ChildSpec::worker("wedge", |_ctx| std::future::pending());
            tokio::spawn(async move {
                let _ = root.start_child(never).await;
            });
        }
        return;
    }
    if fault == "panic" {
        panic!("injected fault: panic in a request handler");
    }
    if let Some(ms) = fault.strip_prefix("stall=").and_then(|ms| ms.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
}

/// A start that fault injection made fail.
#[derive(Debug, thiserror::Error)]
#[error("injected fault: {path} fails to start (start {start})")]
pub(crate) struct StartFault {
    /// The child.
    pub path: String,
    /// Which start of it this was.
    pub start: u64,
}

/// Fails the start of `path` if `FAULT_CRASH_AT_START=PATH@N` asks: from
/// the N-th start of that path in this process on (counted across restarts
/// of its supervisors, which start fresh child records).
pub(crate) fn check_start(path: &str) -> Result<(), StartFault> {
    static STARTS: std::sync::Mutex<Option<std::collections::HashMap<String, u64>>> =
        std::sync::Mutex::new(None);
    let Ok(spec) = std::env::var("FAULT_CRASH_AT_START") else {
        return Ok(());
    };
    let (target, from) = spec.split_once('@').unwrap_or((spec.as_str(), "1"));
    if target != path {
        return Ok(());
    }
    let start = match STARTS.lock() {
        Ok(mut starts) => {
            let n = starts
                .get_or_insert_with(Default::default)
                .entry(path.to_owned())
                .or_insert(0);
            *n += 1;
            *n
        }
        Err(_) => u64::MAX,
    };
    if start >= from.parse().unwrap_or(1) {
        return Err(StartFault {
            path: path.to_owned(),
            start,
        });
    }
    Ok(())
}
