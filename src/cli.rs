//! The command line (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;
use crate::control::protocol::Command as CtlCommand;

/// diem: a random-quote (hitokoto) HTTP API served by an OTP-style
/// supervision tree.
#[derive(Debug, Parser)]
#[command(name = "diem", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: config/diem.toml when it exists). Every key
    /// can also be set with `DIEM_<SECTION>__<KEY>`.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log line format (overrides log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Load a sentences-bundle directory into PostgreSQL (idempotent).
    Import {
        /// The bundle directory (holding version.json).
        dir: PathBuf,
        /// Also delete the sentences of the bundle's categories that the
        /// bundle no longer has (in the same transaction).
        #[arg(long)]
        prune: bool,
    },
    /// Check or show the configuration.
    Config {
        /// What to do.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Operate a running node over its control socket.
    #[command(disable_help_subcommand = true)]
    Ctl {
        /// How to reach the node and show its reply.
        #[command(flatten)]
        options: CtlOptions,
        /// The command.
        #[command(subcommand)]
        command: CtlCommand,
    },
}

/// What `diem config` does.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration offline: exit 0 if valid, 2 if not.
    Check,
    /// Print the effective configuration, each key with the layer it came
    /// from (defaults, file, environment), secrets redacted.
    Show,
}

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
/// assert_eq!(diem::cli::parse_timeout("30"), Ok(Duration::from_secs(30)));
/// assert_eq!(diem::cli::parse_timeout("250ms"), Ok(Duration::from_millis(250)));
/// assert!(diem::cli::parse_timeout("soon").is_err());
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
    pub fn target(&self) -> crate::control::protocol::Target {
        use crate::control::protocol::Target;
        match (&self.node, self.cluster) {
            (Some(name), _) => Target::Node(name.clone()),
            (None, true) => Target::Cluster,
            (None, false) => Target::Local,
        }
    }
}
