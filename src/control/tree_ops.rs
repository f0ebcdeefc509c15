//! What the control commands do to the tree: graceful restart, injected
//! kill and pool resizing, through the supervisors' own API (so the tree
//! reacts exactly as to any other start, stop or crash), with their typed
//! replies and their errors in the control protocol's codes.

use supervisors::{resolve, KillOutcome, Restarted, SupervisorError, SupervisorRef};

use crate::control::protocol::ProtoError;
use crate::control::reply::{Died, KillReply, Replacement, RestartReply, ScaleReply};
use crate::node::Node;

/// A supervisor's error in the control protocol's codes.
pub(crate) fn failed(e: SupervisorError) -> ProtoError {
    match e {
        SupervisorError::NotFound(path) => ProtoError::new("not_found", format!("no node at `{path}`")),
        SupervisorError::NotDynamic(path) => {
            ProtoError::new("not_a_pool", format!("`{path}` is not a dynamic pool"))
        }
        SupervisorError::NotRunning(id) => {
            ProtoError::new("not_running", format!("`{id}` has no running process"))
        }
        e @ SupervisorError::WouldExceedIntensity { .. } => {
            ProtoError::new("would_exceed_intensity", e.to_string())
        }
        other => ProtoError::new("failed", other.to_string()),
    }
}

/// The root supervisor, or `unavailable`.
pub(crate) fn root(node: &Node) -> Result<SupervisorRef, ProtoError> {
    node.root()
        .cloned()
        .ok_or_else(|| ProtoError::new("unavailable", "the tree is not running"))
}

/// Restarts the child or subtree at `path` (rolling for a pool).
pub(crate) async fn restart(node: &Node, path: &str) -> Result<RestartReply, ProtoError> {
    let found = resolve(&root(node)?, path).await.map_err(failed)?;
    if found.parent.is_none() {
        return Err(ProtoError::new(
            "unsupported",
            "the root is the node itself: restart its children, or use shutdown and let the service manager start it",
        ));
    }
    let path = path.to_owned();
    Ok(match found.restart().await.map_err(failed)? {
        Restarted::Rolling { replaced } => RestartReply {
            path,
            rolling: Some(true),
            replaced: Some(replaced),
            ..RestartReply::default()
        },
        Restarted::Replaced { by } => RestartReply {
            path,
            replaced_by: Some(by),
            ..RestartReply::default()
        },
        Restarted::Restarted { old, new } => RestartReply {
            path,
            old,
            new,
            ..RestartReply::default()
        },
    })
}

/// Kills the child at `path` with `reason` (injected), refused when its
/// supervisor would give up, unless `force`.
pub(crate) async fn kill(
    node: &Node,
    path: &str,
    reason: Option<String>,
    force: bool,
) -> Result<KillReply, ProtoError> {
    let found = resolve(&root(node)?, path).await.map_err(failed)?;
    if found.parent.is_none() {
        return Err(ProtoError::new(
            "unsupported",
            "the root is the node itself: kill its children, or use shutdown",
        ));
    }
    let shown = reason.clone().unwrap_or_else(|| "killed".to_owned());
    let killed = found.kill(reason, force).await.map_err(failed)?;
    let (replaced_by, state) = match killed.outcome {
        KillOutcome::Replaced(new) => (
            Some(Replacement {
                actor: new.actor,
                incarnation: new.incarnation,
                recovery_us: killed.recovery_us,
            }),
            "running".to_owned(),
        ),
        KillOutcome::NotRestarted => {
            let state = match found.parent.as_ref().map(|p| p.which_children()) {
                Some(children) => match children.await {
                    Ok(children) => children
                        .into_iter()
                        .find(|c| c.id == found.id)
                        .map_or("removed".to_owned(), |c| c.state.to_string()),
                    Err(_) => "its supervisor stopped".to_owned(),
                },
                None => "removed".to_owned(),
            };
            (None, state)
        }
    };
    Ok(KillReply {
        path: path.to_owned(),
        died: Died {
            actor: killed.died.actor,
            incarnation: killed.died.incarnation,
            reason: shown,
        },
        replaced_by,
        state,
    })
}

/// Resizes the pool at `pool` to `n` instances (1 to `workers.max`).
pub(crate) async fn scale(node: &Node, pool: &str, n: usize) -> Result<ScaleReply, ProtoError> {
    let max = node.config().workers.max;
    if n == 0 || n > max {
        return Err(ProtoError::new(
            "invalid_argument",
            format!("`n` must be from 1 to workers.max ({max}), found {n}"),
        ));
    }
    let found = resolve(&root(node)?, pool).await.map_err(failed)?;
    let sup = found
        .supervisor()
        .ok_or_else(|| ProtoError::new("not_a_pool", format!("`{pool}` is not a dynamic pool")))?;
    let scaled = sup.scale_to(n).await.map_err(|e| match e {
        SupervisorError::NotDynamic(_) => {
            ProtoError::new("not_a_pool", format!("`{pool}` is not a dynamic pool"))
        }
        other => failed(other),
    })?;
    tracing::info!(pool, from = scaled.from, to = scaled.to, "pool scaled");
    Ok(ScaleReply {
        pool: pool.to_owned(),
        from: scaled.from,
        to: scaled.to,
    })
}
