//! The options of `diem ctl` (clap), accepted anywhere on its line: how
//! to reach the node, where the command runs and how its reply is shown.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::control::protocol::Target;

/// The options of `diem ctl`, accepted anywhere on its line.
#[derive(Debug, Clone, Args)]
pub struct CtlOptions {
    /// Control socket (default: control.socket from the config).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the raw JSON reply.
    #[arg(long, global = true)]
    pub json: bool,
    /// Longest wait for the reply, e.g. 5s, 2m, or seconds (default 5s; for
    /// upgrade, how long the new process may take to be ready, default
    /// control.upgrade_timeout).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Repeat the command every second and redraw in place, like `watch`
    /// (for `tree` and `stats`), until interrupted.
    #[arg(long, global = true)]
    pub watch: bool,
    /// Run the command on this member of the cluster (through this node).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "cluster")]
    pub node: Option<String>,
    /// Run the command on every member: tree, stats, ping, ready, cluster
    /// and limiter reset at once; reload and restart rolling, one member at
    /// a time.
    #[arg(long, global = true)]
    pub cluster: bool,
}

/// A duration with a unit (`5s`, `2m`, humantime's syntax) or a number of
/// seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(diem::control::options::parse_timeout("30"), Ok(Duration::from_secs(30)));
/// assert_eq!(diem::control::options::parse_timeout("250ms"), Ok(Duration::from_millis(250)));
/// assert!(diem::control::options::parse_timeout("soon").is_err());
/// ```
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => {
            humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e} (e.g. 5s, 2m, or seconds)"))
        }
    }
}

/// How long `diem ctl` waits for a reply when --timeout is not given.
pub const DEFAULT_CTL_TIMEOUT: Duration = Duration::from_secs(5);

impl CtlOptions {
    /// Where the command runs.
    pub fn target(&self) -> Target {
        match (&self.node, self.cluster) {
            (Some(name), _) => Target::Node(name.clone()),
            (None, true) => Target::Cluster,
            (None, false) => Target::Local,
        }
    }
}
