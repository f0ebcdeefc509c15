//! What each control command is allowed to do, in one table.
//!
//! [`Command::policy`] says, per command, whether it changes anything,
//! whether it also goes into the observer's event log, where it runs with
//! the cluster, and whether the admin page may send it. The table is
//! matched without a wildcard: a new command does not compile until its
//! policy is written here. The dispatcher
//! ([`commands`](super::commands)) reads it and decides nothing by itself.
//!
//! ```
//! use diem::control::policy::Scope;
//! use diem::control::protocol::{parse, Command};
//!
//! let (_, kill) = parse(r#"{"cmd":"kill","path":"diem/workers/1"}"#).unwrap();
//! let policy = kill.policy();
//! assert!(!policy.read_only && policy.admin_page && policy.scope == Scope::Local);
//! assert_eq!(Command::Reload.policy().scope, Scope::Rolling);
//! assert!(Command::Tree.policy().read_only);
//! ```

use crate::control::protocol::{Command, LimiterAction};

/// Where a command runs when the cluster is enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// On the node asked (`--node` forwards it to a member); not
    /// cluster-wide.
    Local,
    /// As `Local`; with `--cluster` on every member at once.
    Fanout,
    /// On every member whenever the cluster is enabled, even when asked
    /// locally (a limiter reset: every member's deny cache must forget).
    EveryNode,
    /// As `Local`; with `--cluster` one member at a time, each ready again
    /// before the next (reload, restart).
    Rolling,
    /// Only on the node's own control socket, never forwarded (an upgrade:
    /// the binary is a path on its host, and the hand-over ends the
    /// cluster connection a forwarded reply would travel back on).
    LocalOnly,
}

/// Whether a command, besides the audit log every command goes to, is
/// shown in the observer's event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audit {
    /// The audit log (`diem::audit`, at info) only.
    Log,
    /// The audit log and, once it has run here, the observer's event log.
    LogAndEvents,
}

/// What a command is allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// It changes nothing.
    pub read_only: bool,
    /// Where its record goes.
    pub audit: Audit,
    /// Where it runs with the cluster.
    pub scope: Scope,
    /// The observer page may send it (a browser session; the control
    /// socket may send everything).
    pub admin_page: bool,
}

const fn read(scope: Scope) -> Policy {
    Policy {
        read_only: true,
        audit: Audit::Log,
        scope,
        admin_page: false,
    }
}

const fn change(scope: Scope, audit: Audit, admin_page: bool) -> Policy {
    Policy {
        read_only: false,
        audit,
        scope,
        admin_page,
    }
}

impl Command {
    /// This command's policy. A `force` kill (which may take a subtree or
    /// the process down) is for the control socket only; so are upgrades,
    /// shutdowns and limiter resets.
    pub fn policy(&self) -> Policy {
        use Audit::{Log, LogAndEvents};
        use Scope::{EveryNode, Fanout, Local, LocalOnly, Rolling};
        match self {
            Command::Help => read(Local),
            Command::Ping
            | Command::Tree
            | Command::Stats
            | Command::Top { .. }
            | Command::Diagnose
            | Command::Ready
            | Command::Cluster => read(Fanout),
            Command::Limiter {
                action: LimiterAction::Get { .. },
            } => read(Local),
            Command::Limiter {
                action: LimiterAction::Reset { .. },
            } => change(EveryNode, Log, false),
            Command::Kill { force, .. } => change(Local, LogAndEvents, !force),
            Command::Restart { .. } | Command::Reload => change(Rolling, LogAndEvents, true),
            Command::Scale { .. } | Command::LogLevel { .. } => change(Local, LogAndEvents, true),
            // A login link: it opens nothing by itself, but it is a secret.
            Command::Observe => change(Local, Log, false),
            Command::Upgrade { .. } => change(LocalOnly, LogAndEvents, false),
            Command::Shutdown { .. } => change(Local, Log, false),
        }
    }
}
