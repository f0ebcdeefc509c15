//! A serialisable snapshot of a whole supervision tree.
//!
//! [`snapshot`] asks the root supervisor for its children, then each child
//! supervisor for its own, and so on; the supervisors answer between two
//! messages and never wait on each other, so a busy subtree delays only the
//! snapshot. [`resolve`] finds a node by path, for operator commands.
//!
//! ```
//! # use ractor::{Actor, ActorProcessingErr, ActorRef};
//! # use supervisors::*;
//! # struct Idle;
//! # impl Actor for Idle {
//! #     type Msg = (); type State = (); type Arguments = ();
//! #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = SupervisorSpec::new(SupervisorFlags::default())
//!     .child(ChildSpec::worker("pool", |ctx| async move { ctx.spawn(Idle, ()).await }));
//! let spec = SupervisorSpec::new(SupervisorFlags::default()).child(store.into_child_spec("store"));
//! let root = start_root("app", spec, EventBus::new()).await.unwrap();
//! let tree = snapshot(root.supervisor()).await.unwrap();
//! assert_eq!(tree.children[0].children[0].path, "app/store/pool");
//! root.shutdown().await;
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use ractor::ActorCell;
use serde::Serialize;

use crate::child::{ChildInfo, ChildState};
use crate::child_spec::ChildKind;
use crate::client::SupervisorRef;
use crate::error::SupervisorError;
use crate::flags::Strategy;

/// One node of a tree snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct TreeNode {
    /// Path from the root, e.g. `diem/workers/3`.
    pub path: String,
    /// The node's id within its supervisor.
    pub id: String,
    /// The running process's actor id.
    pub actor: Option<String>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Running, stopped or restarting.
    pub state: ChildState,
    /// Restarts made by its supervisor.
    pub restarts: u64,
    /// Why its previous process exited.
    pub last_exit: Option<String>,
    /// How long the current process has run, in milliseconds.
    pub uptime_ms: Option<u64>,
    /// A supervisor's strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// A dynamic supervisor's number of running instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Its children in start order.
    pub children: Vec<TreeNode>,
}

fn uptime(started: Option<Instant>) -> Option<u64> {
    started.map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX))
}

fn leaf(info: &ChildInfo) -> TreeNode {
    TreeNode {
        path: info.path.clone(),
        id: info.id.clone(),
        actor: info.actor.as_ref().map(|c| c.get_id().to_string()),
        kind: info.kind,
        state: info.state,
        restarts: info.restarts,
        last_exit: info.last_exit.as_ref().map(ToString::to_string),
        uptime_ms: uptime(info.started_at),
        strategy: None,
        size: None,
        children: Vec::new(),
    }
}

type NodeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SupervisorError>> + Send + 'a>>;

fn fill(node: &mut TreeNode, sup: SupervisorRef) -> NodeFuture<'_> {
    Box::pin(async move {
        let info = sup.inspect().await?;
        node.strategy = Some(info.flags.strategy);
        if info.flags.strategy == Strategy::Dynamic {
            node.size = Some(info.children.iter().filter(|c| c.actor.is_some()).count());
        }
        for child in &info.children {
            let mut sub = leaf(child);
            if child.kind == ChildKind::Supervisor {
                if let Some(sup) = child.actor.clone().and_then(SupervisorRef::from_cell) {
                    // A subtree that stops while we look is shown without children.
                    let _ = fill(&mut sub, sup).await;
                }
            }
            node.children.push(sub);
        }
        Ok(())
    })
}

/// Snapshots the tree under `root`.
pub async fn snapshot(root: &SupervisorRef) -> Result<TreeNode, SupervisorError> {
    let info = root.inspect().await?;
    let id = info.path.rsplit('/').next().unwrap_or_default().to_owned();
    let mut node = TreeNode {
        path: info.path.clone(),
        id,
        actor: Some(root.actor().get_id().to_string()),
        kind: ChildKind::Supervisor,
        state: ChildState::Running,
        restarts: 0,
        last_exit: None,
        uptime_ms: uptime(Some(info.started_at)),
        strategy: None,
        size: None,
        children: Vec::new(),
    };
    fill(&mut node, root.clone()).await?;
    Ok(node)
}

/// A node found by [`resolve`].
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The supervisor the node belongs to (`None` for the root itself).
    pub parent: Option<SupervisorRef>,
    /// The node's id within that supervisor.
    pub id: String,
    /// The node's running process, if any.
    pub cell: Option<ActorCell>,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// Finds the node at `path` (e.g. `diem/workers/3`) under `root`.
pub async fn resolve(root: &SupervisorRef, path: &str) -> Result<Resolved, SupervisorError> {
    let info = root.inspect().await?;
    let not_found = || SupervisorError::NotFound(path.to_owned());
    let rest = match path.strip_prefix(info.path.as_str()) {
        Some("") => {
            return Ok(Resolved {
                parent: None,
                id: info.path.clone(),
                cell: Some(root.actor().get_cell()),
                kind: ChildKind::Supervisor,
            })
        }
        Some(rest) => rest.strip_prefix('/').ok_or_else(not_found)?,
        None => return Err(not_found()),
    };
    let mut sup = root.clone();
    let mut children = info.children;
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let child = children
            .into_iter()
            .find(|c| c.id == segment)
            .ok_or_else(not_found)?;
        if segments.peek().is_none() {
            return Ok(Resolved {
                parent: Some(sup),
                id: child.id,
                cell: child.actor,
                kind: child.kind,
            });
        }
        sup = child
            .actor
            .and_then(SupervisorRef::from_cell)
            .ok_or_else(not_found)?;
        children = sup.inspect().await?.children;
    }
    Err(not_found())
}
