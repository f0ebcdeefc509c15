//! `diem serve`: start the tree, serve until asked to stop, stop cleanly.
//!
//! Shutdown (SIGTERM, SIGINT or `diem ctl shutdown`) is Kubernetes'
//! sequence: readiness turns 503 at once, but the node goes on accepting
//! and serving for `http.shutdown_delay` (every response then says
//! `Connection: close`, so keep-alive clients move on between requests
//! rather than being cut under one), so that load balancers see it unready
//! before anything is refused; then the listener stops and the socket
//! closes, in-flight requests get `http.shutdown_grace` to finish (idle
//! connections close at once), the tree stops in reverse start order and
//! the process exits 0. A second signal exits at once (130).
//!
//! If the root supervisor stops by itself (it gave up: restart intensity
//! exceeded), the process exits 1 so that systemd or Kubernetes starts it
//! again, as Erlang's `heart` would.

use std::sync::Arc;

use anyhow::Context;
use supervisors::{start_root, Event};
use tokio::signal::unix::{signal, SignalKind};

use crate::node::Node;
use crate::tree;
use crate::tree_paths::ROOT;

/// Waits for SIGTERM or SIGINT.
async fn signalled() -> anyhow::Result<&'static str> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Runs the node until it stops; returns the process exit code.
pub async fn run(node: Arc<Node>) -> anyhow::Result<i32> {
    let config = node.config();
    let addr = node
        .http
        .bind(&config.http)
        .with_context(|| format!("cannot listen on {}", config.http.addr))?;
    let metrics_node = node.clone();
    node.events.add_listener(move |e| match e {
        Event::Restarted { path, reason, .. } => metrics_node.metrics.restart(path, reason.kind()),
        Event::Started { path, .. } => metrics_node.metrics.declare_child(path),
        _ => {}
    });
    let root = start_root(ROOT, tree::spec(&node), node.events.clone())
        .await
        .context("the supervision tree failed to start")?;
    let _ = node.root.set(root.supervisor().clone());
    tracing::info!(%addr, node = %config.node.name, version = env!("CARGO_PKG_VERSION"), "diem started");
    for variable in crate::config::env::foreign_variables() {
        tracing::debug!(%variable, "ignored: not a config variable (config is DIEM_<SECTION>__<KEY>)");
    }

    let grace = tokio::select! {
        signal = signalled() => {
            let signal = signal?;
            tracing::info!(signal, "shutdown requested");
            config.http.shutdown_grace
        }
        grace = node.shutdown_requested() => grace,
        reason = root.wait() => {
            tracing::error!(%reason, "the root supervisor gave up; exiting so that the service manager restarts diem");
            return Ok(1);
        }
    };
    tokio::spawn(async {
        if signalled().await.is_ok() {
            eprintln!("second signal: exiting at once");
            std::process::exit(130);
        }
    });

    node.start_draining();
    let delay = node.config().http.shutdown_delay;
    if !delay.is_zero() {
        // Readiness is 503 from now on; serve on while load balancers notice.
        tracing::info!(delay = ?delay, "not ready; serving on before the listener closes");
        tokio::time::sleep(delay).await;
    }
    let _ = root.supervisor().terminate_child("listener").await;
    node.http.close();
    let open = node.http.open_connections();
    tracing::info!(
        grace = ?grace,
        open_connections = open,
        "draining connections"
    );
    if !node.http.drain(grace).await {
        tracing::warn!(
            open_connections = node.http.open_connections(),
            "grace period over; closing the connections still open"
        );
    }
    root.shutdown().await;
    tracing::info!("diem stopped");
    Ok(0)
}
