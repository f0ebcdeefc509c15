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
//!
//! The listening sockets come from, in this order: the process this one
//! upgrades ([`upgrade`](crate::upgrade)), systemd's socket activation
//! ([`systemd::activated`]), or a bind of `http.addr` and `control.socket`.
//! `SIGUSR2` starts an upgrade to the binary at the running executable's
//! path; after a hand-over the process drains as on SIGTERM, without the
//! readiness delay (it no longer has a listener), and exits 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use supervisors::{start_root, Event, Root, SupervisorRef};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::control::shared as control_socket;
use crate::node::{Node, Stop};
use crate::systemd::{self, Activated};
use crate::tree;
use crate::tree_paths::{child, ROOT};
use crate::upgrade::successor;

/// SIGTERM and SIGINT, watched from the moment they are created: once
/// watched, neither ends the process by its default action.
struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    fn watch() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// Waits for the next of them (one sent since `watch` counts).
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Starts an upgrade on each SIGUSR2, as `ctl upgrade` with its defaults.
fn upgrade_on_sigusr2(node: Arc<Node>) -> anyhow::Result<()> {
    let mut usr2 = signal(SignalKind::user_defined2()).context("cannot watch SIGUSR2")?;
    tokio::spawn(async move {
        while usr2.recv().await.is_some() {
            let timeout = node.config().control.upgrade_timeout;
            tracing::info!(target: "diem::audit", via = "SIGUSR2", "upgrade requested");
            // As for `ctl upgrade`: the process, handed over, does not exit
            // before the outcome is logged.
            let _busy = node.control.busy();
            match node.upgrade.request(None, timeout.get()).await {
                Ok(report) => tracing::info!(
                    new_pid = report.new.pid,
                    new_version = %report.new.version,
                    "upgrade (SIGUSR2) done"
                ),
                Err(e) => tracing::error!(error = %e, "upgrade (SIGUSR2) failed; this process serves on"),
            }
        }
    });
    Ok(())
}

/// Removes the control socket file (if this process owns it) however
/// `run` ends.
struct CloseControl(Arc<Node>);

impl Drop for CloseControl {
    fn drop(&mut self) {
        self.0.control.close();
    }
}

/// Where the listening sockets came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The process this one upgrades.
    Upgrade,
    /// systemd (socket activation).
    Systemd,
    /// Bound here.
    Bound,
}

/// Installs the listening sockets: received from the process this one
/// upgrades, passed by systemd, or bound here.
fn install_sockets(
    node: &Node,
    inherited: Option<(std::net::TcpListener, std::os::unix::net::UnixListener)>,
    activated: Activated,
) -> anyhow::Result<()> {
    let config = node.config();
    let (http, http_origin, control) = match inherited {
        Some((http, control)) => (http, Origin::Upgrade, Some(control)),
        None => {
            let control = activated.control;
            match activated.http {
                Some(http) => (http, Origin::Systemd, control),
                None => {
                    let http = crate::http::shared::bind(&config.http)
                        .with_context(|| format!("cannot listen on {}", config.http.addr))?;
                    (http, Origin::Bound, control)
                }
            }
        }
    };
    let addr = node
        .http
        .install(http, &config.http)
        .context("cannot use the listening socket")?;
    match http_origin {
        Origin::Systemd => {
            tracing::info!(%addr, "serving on the socket systemd passed (http.addr is not used)")
        }
        Origin::Upgrade if config.http.addr.port() != 0 && addr != config.http.addr => {
            tracing::warn!(%addr, configured = %config.http.addr, "serving on the socket of the upgraded process; the new http.addr applies after a restart")
        }
        _ => {}
    }
    match control {
        Some(listener) => {
            let path = listener
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(PathBuf::from))
                .unwrap_or_else(|| config.control.socket_path());
            // A socket from systemd is systemd's to remove; one from the
            // upgraded process becomes this process's once it serves.
            node.control
                .install(listener, path, None)
                .context("cannot use the control socket")?;
        }
        None => {
            let path = config.control.socket_path();
            let (listener, file) = control_socket::bind(&path)?;
            node.control
                .install(listener, path, Some(file))
                .context("cannot use the control socket")?;
        }
    }
    Ok(())
}

/// Runs the node until it stops; returns the process exit code.
/// `activated` holds the sockets systemd passed, if any.
pub async fn run(node: Arc<Node>, activated: Activated) -> anyhow::Result<i32> {
    let _close_control = CloseControl(node.clone());
    let takeover = install(&node, activated).await?;
    report_events(&node);
    let root = start_root(ROOT, tree::spec(&node, takeover.is_none()), node.events.clone())
        .await
        .context("the supervision tree failed to start")?;
    let _ = node.root.set(root.supervisor().clone());
    if let Some(takeover) = takeover {
        take_over(&node, root.supervisor(), takeover).await?;
    }
    let mut signals = announce(&node)?;
    let Some(stop) = wait_for_stop(&node, &root, &mut signals).await else {
        return Ok(1);
    };
    tokio::spawn(async move {
        signals.recv().await;
        eprintln!("second signal: exiting at once");
        std::process::exit(130);
    });
    let grace = stop_accepting(&node, root.supervisor(), stop).await;
    drain(&node, grace).await;
    root.shutdown().await;
    tracing::info!("diem stopped");
    Ok(0)
}

/// What a process started by an upgrade keeps for the take-over.
struct TakeOver {
    successor: successor::Successor,
    old_stderr: Option<std::os::fd::OwnedFd>,
}

/// Installs the listening sockets — from the process this one upgrades
/// (then the accept gate stays closed until the take-over), from systemd,
/// or bound here.
async fn install(node: &Node, activated: Activated) -> anyhow::Result<Option<TakeOver>> {
    match successor::connect().await {
        Some(fetched) => {
            let (successor, mut inherited) = fetched.context("cannot take over from the running process")?;
            tracing::info!(
                old_pid = successor.old_pid(),
                old_version = successor.old_version(),
                "upgrade: received the sockets; starting the tree"
            );
            let old_stderr = inherited.take_stderr();
            install_sockets(node, Some((inherited.http, inherited.control)), activated)?;
            node.http.close_gate();
            Ok(Some(TakeOver {
                successor,
                old_stderr,
            }))
        }
        None => {
            install_sockets(node, None, activated)?;
            Ok(None)
        }
    }
}

/// The tree's events, counted in the metrics and kept in the observer's
/// event log.
fn report_events(node: &Arc<Node>) {
    let events_node = node.clone();
    node.events.add_listener(move |e| {
        match e {
            Event::Restarted { path, reason, .. } => events_node.metrics.restart(path, reason.kind()),
            Event::Started { path, .. } => events_node.metrics.declare_child(path),
            _ => {}
        }
        events_node.observer.supervision(e);
    });
}

/// Takes over from the old process: once it has released them, starts the
/// children only one process may hold, then opens the accept gate.
async fn take_over(node: &Arc<Node>, supervisor: &SupervisorRef, takeover: TakeOver) -> anyhow::Result<()> {
    let (exclusive_node, supervisor) = (node.clone(), supervisor.clone());
    let start_exclusive = async move {
        for spec in tree::exclusive(&exclusive_node) {
            let id = spec.id.clone();
            if let Err(e) = supervisor.start_child(spec).await {
                tracing::error!(child = %id, error = %e, "upgrade: a child released by the old process did not start");
            }
        }
    };
    takeover
        .successor
        .take_over(node, takeover.old_stderr, start_exclusive)
        .await
        .context("the upgrade did not complete; the old process serves on")?;
    node.control.adopt_file();
    Ok(())
}

/// Watches the signals, then says the node is ready (log, systemd) and
/// warns of environment variables that look like config but are not.
fn announce(node: &Arc<Node>) -> anyhow::Result<ShutdownSignals> {
    // Watched before the process says it is ready: a signal sent as soon
    // as it did (systemd's ExecReload, a test, an operator) must not meet
    // the default action, which for all three ends the process at once.
    let signals = ShutdownSignals::watch()?;
    upgrade_on_sigusr2(node.clone())?;
    let config = node.config();
    let addr = node.http.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, node = %config.node.name, version = env!("CARGO_PKG_VERSION"), pid = std::process::id(), "diem started");
    systemd::ready(&systemd::summary(node));
    for variable in crate::config::env::foreign_variables() {
        match crate::config::env::meant(&variable) {
            Some(meant) => tracing::warn!(%variable, "ignored: not a config variable; did you mean {meant}?"),
            None => {
                tracing::debug!(%variable, "ignored: not a config variable (config is DIEM_<SECTION>__<KEY>)")
            }
        }
    }
    Ok(signals)
}

/// Waits for a signal, a `shutdown` or a hand-over; `None` when the root
/// supervisor gave up (the process then exits 1).
async fn wait_for_stop(node: &Node, root: &Root, signals: &mut ShutdownSignals) -> Option<Stop> {
    tokio::select! {
        signal = signals.recv() => {
            tracing::info!(signal, "shutdown requested");
            Some(Stop::Shutdown(node.config().http.shutdown_grace.get()))
        }
        stop = node.shutdown_requested() => Some(stop),
        reason = root.wait() => {
            tracing::error!(%reason, "the root supervisor gave up; exiting so that the service manager restarts diem");
            None
        }
    }
}

/// Stops accepting: after a shutdown, unready for `http.shutdown_delay`
/// while serving on, then the listener stops and the socket closes; after
/// a hand-over (the new process accepts already), waits up to the same
/// delay for keep-alive clients to move on. Returns the grace period of
/// the requests still in flight.
async fn stop_accepting(node: &Node, supervisor: &SupervisorRef, stop: Stop) -> Duration {
    node.start_draining();
    let delay = node.config().http.shutdown_delay;
    match stop {
        Stop::Shutdown(grace) => {
            systemd::stopping("draining: shutdown requested");
            if !delay.is_zero() {
                // Readiness is 503 from now on; serve on while load balancers notice.
                tracing::info!(delay = ?delay, "not ready; serving on before the listener closes");
                tokio::time::sleep(delay.get()).await;
            }
            let _ = supervisor.terminate_child(child::LISTENER).await;
            node.http.close();
            grace
        }
        Stop::HandedOver => {
            // Each response here now says `Connection: close`: keep-alive
            // clients move to the new process between requests, rather than
            // finding an idle connection closed under their next request.
            let deadline = tokio::time::Instant::now().checked_add(delay.get());
            if let Some(deadline) = deadline {
                node.http.none_open(deadline).await;
            }
            node.config().http.shutdown_grace.get()
        }
    }
}

/// Lets the requests in flight finish (at most `grace`), then the control
/// replies still being written.
async fn drain(node: &Node, grace: Duration) {
    tracing::info!(
        grace = ?grace,
        open_connections = node.http.open_connections(),
        "draining connections"
    );
    if !node.http.drain(grace).await {
        tracing::warn!(
            open_connections = node.http.open_connections(),
            "grace period over; closing the connections still open"
        );
    }
    node.control.answered(Duration::from_secs(1)).await;
}
