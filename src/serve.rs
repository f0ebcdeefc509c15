//! `diem serve`: start the tree, serve until asked to stop, stop cleanly.
//!
//! Shutdown (SIGTERM, SIGINT or `diem ctl shutdown`) is Kubernetes'
//! sequence: readiness turns 503, the listener stops and the socket closes
//! (new connections are refused), in-flight requests get the grace period
//! to finish (idle keep-alive connections close at once), then the tree
//! stops in reverse start order and the process exits 0. A second signal
//! exits at once (130).
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
