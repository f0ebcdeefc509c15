//! A serialisable snapshot of a whole supervision tree.
//!
//! [`snapshot`] asks the root supervisor for its children, then each child
//! supervisor for its own, and so on; the supervisors answer between two
//! messages and never wait on each other, so a busy subtree delays only the
//! snapshot. [`resolve`] finds a node by path, for operator commands.
//!
//! A [`TreeNode`] serialises to JSON and back (an operator tool draws what
//! a node sent it), [`TreeNode::iter`] walks it depth first and
//! [`TreeNode::find`] looks a path up.
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
//! assert_eq!(tree.find("app/store/pool").unwrap().state, ChildState::Running);
//! assert_eq!(tree.iter().count(), 3);
//! let back: TreeNode = serde_json::from_str(&serde_json::to_string(&tree).unwrap()).unwrap();
//! assert_eq!(back.find("app/store").unwrap().strategy, Some(Strategy::OneForOne));
//! root.shutdown().await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use ractor::ActorCell;
use serde::{Deserialize, Serialize};

use crate::child::{ChildInfo, ChildState};
use crate::child_spec::ChildKind;
use crate::client::SupervisorRef;
use crate::error::SupervisorError;
use crate::flags::Strategy;
use crate::message::{Incarnation, Killed, SupervisorInfo};

/// One node of a tree snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// A supervisor's restart intensity and period (ms), and the restarts
    /// its window holds now: at `intensity`, the next restart gives up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<Intensity>,
    /// A dynamic supervisor's number of running instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// A sized dynamic supervisor's wanted number of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<usize>,
    /// Figures the application attaches to this node (e.g. a pool's
    /// requests in flight); serialised as fields of the node.
    #[serde(flatten)]
    pub annotations: BTreeMap<String, u64>,
    /// Its children in start order.
    pub children: Vec<TreeNode>,
}

/// A supervisor's restart budget as a snapshot shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intensity {
    /// Restarts allowed within the period.
    pub intensity: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// Restarts inside the window now.
    pub in_window: usize,
}

impl TreeNode {
    /// This node and every node below it, depth first, parents before
    /// children.
    pub fn iter(&self) -> impl Iterator<Item = &TreeNode> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let node = stack.pop()?;
            stack.extend(node.children.iter().rev());
            Some(node)
        })
    }

    /// The node at `path`, if it is this one or below.
    pub fn find(&self, path: &str) -> Option<&TreeNode> {
        self.iter().find(|n| n.path == path)
    }

    /// The node at `path`, mutably.
    pub fn find_mut(&mut self, path: &str) -> Option<&mut TreeNode> {
        if self.path == path {
            return Some(self);
        }
        self.children.iter_mut().find_map(|c| c.find_mut(path))
    }
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
        intensity: None,
        size: None,
        target: None,
        annotations: BTreeMap::new(),
        children: Vec::new(),
    }
}

/// Fills a supervisor node's own fields from what it says about itself.
fn describe(node: &mut TreeNode, info: &SupervisorInfo) {
    node.strategy = Some(info.flags.strategy);
    node.intensity = Some(Intensity {
        intensity: info.flags.intensity,
        period_ms: u64::try_from(info.flags.period.as_millis()).unwrap_or(u64::MAX),
        in_window: info.restarts_in_window,
    });
    if info.flags.strategy == Strategy::Dynamic {
        node.size = Some(info.running().count());
        node.target = info.target;
    }
}

type NodeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SupervisorError>> + Send + 'a>>;

fn fill(node: &mut TreeNode, info: SupervisorInfo) -> NodeFuture<'_> {
    Box::pin(async move {
        describe(node, &info);
        for child in &info.children {
            let mut sub = leaf(child);
            if child.kind == ChildKind::Supervisor {
                if let Some(sup) = child.actor.clone().and_then(SupervisorRef::from_cell) {
                    // A subtree that stops while we look is shown without children.
                    if let Ok(info) = sup.inspect().await {
                        let _ = fill(&mut sub, info).await;
                    }
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
        intensity: None,
        size: None,
        target: None,
        annotations: BTreeMap::new(),
        children: Vec::new(),
    };
    fill(&mut node, info).await?;
    Ok(node)
}

/// A node found by [`resolve`].
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The supervisor the node belongs to (`None` for the root itself).
    pub parent: Option<SupervisorRef>,
    /// The parent's strategy (`None` for the root).
    pub parent_strategy: Option<Strategy>,
    /// The node's id within that supervisor.
    pub id: String,
    /// The node's path.
    pub path: String,
    /// The node's running process, if any.
    pub cell: Option<ActorCell>,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// What [`Resolved::restart`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restarted {
    /// A dynamic supervisor's instances were replaced one at a time.
    Rolling {
        /// How many.
        replaced: usize,
    },
    /// An instance of a dynamic supervisor was replaced by a new one.
    Replaced {
        /// The new instance's path.
        by: String,
    },
    /// The child was terminated and started again.
    Restarted {
        /// The process before.
        old: Option<Incarnation>,
        /// The process after.
        new: Option<Incarnation>,
    },
}

fn incarnation(info: &ChildInfo) -> Option<Incarnation> {
    info.actor.as_ref().map(|a| Incarnation {
        actor: a.get_id().to_string(),
        incarnation: info.incarnation,
    })
}

impl Resolved {
    /// The node as a supervisor, if it is one and runs.
    pub fn supervisor(&self) -> Option<SupervisorRef> {
        self.cell.clone().and_then(SupervisorRef::from_cell)
    }

    fn parent(&self) -> Result<&SupervisorRef, SupervisorError> {
        self.parent.as_ref().ok_or_else(|| {
            SupervisorError::BadStartArgument(self.path.clone(), "a child (the root has no supervisor)")
        })
    }

    async fn child_info(&self) -> Result<Option<ChildInfo>, SupervisorError> {
        Ok(self
            .parent()?
            .inspect()
            .await?
            .children
            .into_iter()
            .find(|c| c.id == self.id))
    }

    /// A graceful restart: a dynamic supervisor's instances are replaced
    /// one at a time ([`SupervisorRef::rolling_restart`]); an instance of
    /// one is replaced by a new instance; any other child is terminated by
    /// its shutdown spec and started again (OTP's `terminate_child` then
    /// `restart_child`). The root cannot be restarted this way.
    pub async fn restart(&self) -> Result<Restarted, SupervisorError> {
        let parent = self.parent()?;
        if let Some(sup) = self.supervisor() {
            if sup.is_dynamic().await? {
                let replaced = sup.rolling_restart().await?;
                return Ok(Restarted::Rolling { replaced });
            }
        }
        if self.parent_strategy == Some(Strategy::Dynamic) {
            let started = parent.replace_instance(&self.id).await?;
            let base = self.path.rsplit_once('/').map_or("", |(p, _)| p);
            return Ok(Restarted::Replaced {
                by: format!("{base}/{}", started.id),
            });
        }
        let old = self.child_info().await?.as_ref().and_then(incarnation);
        parent.terminate_child(&self.id).await?;
        parent.restart_child(&self.id).await?;
        let new = self.child_info().await?.as_ref().and_then(incarnation);
        Ok(Restarted::Restarted { old, new })
    }

    /// Kills the node as an injected fault (see [`SupervisorRef::kill_child`]).
    pub async fn kill(&self, reason: Option<String>, force: bool) -> Result<Killed, SupervisorError> {
        self.parent()?.kill_child(&self.id, reason, force).await
    }
}

/// Finds the node at `path` (e.g. `diem/workers/3`) under `root`.
pub async fn resolve(root: &SupervisorRef, path: &str) -> Result<Resolved, SupervisorError> {
    let info = root.inspect().await?;
    let not_found = || SupervisorError::NotFound(path.to_owned());
    let rest = match path.strip_prefix(info.path.as_str()) {
        Some("") => {
            return Ok(Resolved {
                parent: None,
                parent_strategy: None,
                id: info.path.clone(),
                path: info.path.clone(),
                cell: Some(root.actor().get_cell()),
                kind: ChildKind::Supervisor,
            })
        }
        Some(rest) => rest.strip_prefix('/').ok_or_else(not_found)?,
        None => return Err(not_found()),
    };
    let mut sup = root.clone();
    let mut info = info;
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let strategy = info.flags.strategy;
        let child = info
            .children
            .into_iter()
            .find(|c| c.id == segment)
            .ok_or_else(not_found)?;
        if segments.peek().is_none() {
            return Ok(Resolved {
                parent: Some(sup),
                parent_strategy: Some(strategy),
                id: child.id,
                path: child.path,
                cell: child.actor,
                kind: child.kind,
            });
        }
        sup = child
            .actor
            .and_then(SupervisorRef::from_cell)
            .ok_or_else(not_found)?;
        info = sup.inspect().await?;
    }
    Err(not_found())
}
