//! What each control command does: a dispatcher from [`Command`] to one
//! call — of the supervisors' API ([`tree_ops`]) or of
//! what the node's parts publish — with its reply typed until it is
//! written. Changes the command's policy marks are recorded in the
//! observer's event log. Where a command runs, and its audit, are
//! [`execute`](super::execute)'s.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::control::caller::this_member;
use crate::control::policy::Audit;
use crate::control::protocol::{self, Command, LimiterAction, ProtoError, TopSort};
use crate::control::reply::{
    HelpReply, LogLevelReply, PingReply, ResetReply, ShutdownReply, TopReply, TreeReply,
};
use crate::control::tree_ops::{self, failed};
use crate::load::shared::ActorRow;
use crate::node::Node;
use crate::observer::shared::OperatorAction;
use crate::reload::reload;
use crate::stats;

/// `top`'s reply: the load sampler's rows joined with the tree (state,
/// restarts; children without a row — stopped, or not an actor — with
/// no load), in `sort`'s order.
async fn top(node: &Node, sort: TopSort, limit: Option<usize>) -> Result<TopReply, ProtoError> {
    let tree = node.tree().await.map_err(failed)?;
    let mut actors: Vec<ActorRow> = node.load.rows().as_ref().clone();
    // What is true now, not a second ago: the mailboxes and the running
    // handlers (a handler stuck since the last sample shows at once).
    for row in &mut actors {
        row.mailbox = 0;
        row.busy_ms = 0;
        row.running.clear();
    }
    let now = std::time::Instant::now();
    supervisors::for_each_load(|load| {
        let i = match actors.iter().position(|r| r.path == load.path()) {
            Some(i) => i,
            None => {
                actors.push(ActorRow {
                    path: load.path().to_owned(),
                    ..ActorRow::default()
                });
                actors.len() - 1
            }
        };
        let row = &mut actors[i];
        row.mailbox += load.mailbox();
        row.mailbox_max = row.mailbox_max.max(row.mailbox);
        if let Some((busy, kind)) = load.busy(now) {
            row.busy_ms = row.busy_ms.max(millis(busy));
            row.running = supervisors::kind_name(kind).to_owned();
        }
    });
    for n in tree.iter() {
        match actors.iter_mut().find(|r| r.path == n.path) {
            Some(row) => {
                row.state = n.state.to_string();
                row.restarts = n.restarts;
            }
            None => actors.push(ActorRow {
                path: n.path.clone(),
                state: n.state.to_string(),
                restarts: n.restarts,
                ..ActorRow::default()
            }),
        }
    }
    let key = |r: &ActorRow| -> f64 {
        match sort {
            TopSort::Msgs => r.messages_per_s,
            TopSort::Mailbox => r.mailbox as f64,
            TopSort::Busy => r.busy_ms as f64,
            TopSort::Restarts => r.restarts as f64,
        }
    };
    actors.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.path.cmp(&b.path)));
    if let Some(n) = limit {
        actors.truncate(n);
    }
    Ok(TopReply {
        actors,
        sampler_cost_us_per_s: node.load.cost_ns() / 1_000,
    })
}

fn reply(r: impl Serialize) -> Result<Value, ProtoError> {
    serde_json::to_value(r).map_err(|e| ProtoError::new("failed", e.to_string()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs a parsed command here; a change the policy marks is recorded in
/// the observer's event log.
pub(crate) async fn run(node: &Arc<Node>, command: Command) -> Result<Value, ProtoError> {
    let recorded = command.policy().audit == Audit::LogAndEvents;
    let record = |action: OperatorAction| {
        if recorded {
            node.observer.operator(action);
        }
    };
    match command {
        Command::Help => reply(HelpReply {
            commands: protocol::help(),
        }),
        Command::Ping => reply(PingReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            node: node.config().node.name.clone(),
            pid: std::process::id(),
            uptime_ms: millis(node.started_at.elapsed()),
        }),
        Command::Tree => reply(TreeReply {
            tree: node.tree().await.map_err(failed)?,
        }),
        Command::Stats => reply(stats::collect(node).await),
        Command::Top { sort, limit } => reply(top(node, sort, limit).await?),
        Command::Diagnose => reply(crate::load::diagnose::diagnose(node).await),
        Command::Restart { path } => {
            let done = tree_ops::restart(node, &path).await?;
            record(OperatorAction::Restart { path });
            reply(done)
        }
        Command::Kill { path, reason, force } => {
            let done = tree_ops::kill(node, &path, reason, force).await?;
            record(OperatorAction::Kill {
                path,
                reason: done.died.reason.clone(),
                replaced_in_us: done.replaced_by.as_ref().and_then(|r| r.recovery_us),
                state: done.state.clone(),
            });
            reply(done)
        }
        Command::Scale { pool, n } => {
            let done = tree_ops::scale(node, &pool, n).await?;
            record(OperatorAction::Scale {
                pool,
                from: done.from,
                to: done.to,
            });
            reply(done)
        }
        Command::Reload => {
            let done = reload(node)
                .await
                .map_err(|e| ProtoError::new("invalid_config", e.to_string()))?;
            record(OperatorAction::Reload {
                changed: done.changed.clone(),
            });
            reply(done)
        }
        Command::Limiter { action } => match action {
            LimiterAction::Get { addr } => reply(node.limiter.peek(addr).await),
            LimiterAction::Reset { addr } => {
                let (key, redis) = node.limiter.forget(addr).await;
                reply(ResetReply { key, redis })
            }
        },
        Command::Ready => reply(crate::health::readiness(node).await),
        Command::Cluster => {
            this_member(node)?;
            reply(json!({
                "members": node.cluster.view(&node.config(), node.started_at.elapsed()),
                "no_session_with": node.cluster.refused(),
                "refused_at_cluster_port": node.cluster.refused_at_port(),
            }))
        }
        Command::LogLevel { filter } => {
            let log = node
                .log
                .as_ref()
                .ok_or_else(|| ProtoError::new("unsupported", "this process does not own its logging"))?;
            let previous = log.current();
            log.set(&filter)
                .map_err(|e| ProtoError::new("invalid_argument", e.to_string()))?;
            tracing::info!(%filter, %previous, "log filter changed");
            record(OperatorAction::LogLevel {
                filter: filter.clone(),
            });
            reply(LogLevelReply { filter, previous })
        }
        Command::Observe => {
            let addr = node.config().admin.listen().ok_or_else(|| {
                ProtoError::new("unsupported", "the admin listener is off (admin.addr is empty)")
            })?;
            // The port bound (admin.addr may ask for any, port 0).
            let port = node
                .admin_port()
                .ok_or_else(|| ProtoError::new("unavailable", "the admin listener is not running (yet)"))?;
            // The caller is authenticated already (the socket's peer uid, or
            // the member that forwarded it): a one-time login link.
            reply(node.admin.login_link(addr, port))
        }
        Command::Upgrade { binary, timeout_secs } => {
            if let Some(binary) = binary.as_ref().filter(|b| !b.is_absolute()) {
                return Err(ProtoError::new(
                    "invalid_argument",
                    format!("`binary` must be an absolute path, found {}", binary.display()),
                ));
            }
            let timeout = timeout_secs
                .map(Duration::from_secs)
                .unwrap_or_else(|| node.config().control.upgrade_timeout.get());
            let report = node
                .upgrade
                .request(binary, timeout)
                .await
                .map_err(|e| ProtoError::new(e.code(), e.to_string()))?;
            record(OperatorAction::Upgrade {
                old_pid: report.old.pid,
                new_pid: report.new.pid,
                version: report.new.version.clone(),
            });
            reply(report)
        }
        Command::Shutdown { grace_secs } => {
            let grace = node.request_shutdown(grace_secs.map(Duration::from_secs));
            tracing::info!(grace = ?grace, "shutdown requested over the control socket");
            reply(ShutdownReply {
                shutting_down: true,
                grace_secs: grace.as_secs(),
            })
        }
    }
}
