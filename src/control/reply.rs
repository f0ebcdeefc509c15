//! The replies of the control commands, one type per command: the server
//! serialises them, `diem ctl` reads them back to draw them.

use serde::{Deserialize, Serialize};
use supervisors::{Incarnation, TreeNode};

use crate::control::protocol::CommandHelp;

/// `help`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HelpReply {
    /// Every command.
    pub commands: Vec<CommandHelp>,
}

/// `ping`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PingReply {
    /// diem's version.
    pub version: String,
    /// The node's name.
    pub node: String,
    /// The process id.
    pub pid: u32,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
}

/// `tree`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TreeReply {
    /// The tree; the worker pool carries `queue_depth` (requests admitted
    /// and not yet answered) and `capacity` (the admission bound).
    pub tree: TreeNode,
}

/// `top`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TopReply {
    /// Every actor's row, in the order asked.
    pub actors: Vec<crate::load::shared::ActorRow>,
    /// What the load sampler itself cost in its last second (µs of CPU
    /// per second): the price of watching.
    pub sampler_cost_us_per_s: u64,
}

/// `restart`: what was done, by the kind of node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RestartReply {
    /// The node restarted.
    pub path: String,
    /// A pool: its instances were replaced one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling: Option<bool>,
    /// A pool: how many instances were replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<usize>,
    /// An instance of a pool: the path of the instance that replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Any other child: its process before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Incarnation>,
    /// Any other child: its process after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Incarnation>,
}

/// The process a `kill` ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Died {
    /// Its actor id.
    pub actor: String,
    /// Which start of the child it was.
    pub incarnation: u64,
    /// The reason given (`killed` for an outright kill).
    pub reason: String,
}

/// The process that replaced it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Replacement {
    /// Its actor id.
    pub actor: String,
    /// Which start of the child it is.
    pub incarnation: u64,
    /// From the kill to the replacement running, µs, measured by the
    /// supervisor.
    pub recovery_us: Option<u64>,
}

/// `kill`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KillReply {
    /// The node killed.
    pub path: String,
    /// The process killed.
    pub died: Died,
    /// Its replacement, when the supervisor restarted it.
    pub replaced_by: Option<Replacement>,
    /// The child's state after the supervisor reacted.
    pub state: String,
}

/// `scale`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ScaleReply {
    /// The pool.
    pub pool: String,
    /// Instances before.
    pub from: usize,
    /// Instances now.
    pub to: usize,
}

/// `limiter reset`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ResetReply {
    /// The key forgotten.
    pub(crate) key: String,
    /// Whether Redis was reached (otherwise only the local store forgot it).
    pub(crate) redis: bool,
}

/// `log-level`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LogLevelReply {
    /// The filter now.
    pub filter: String,
    /// The filter before.
    pub previous: String,
}

/// `shutdown`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ShutdownReply {
    /// Always true.
    pub shutting_down: bool,
    /// The grace period, seconds.
    pub grace_secs: u64,
}
