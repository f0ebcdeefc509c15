//! The command line (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::LogFormat;
pub use crate::control::options::{parse_timeout, CtlOptions, DEFAULT_CTL_TIMEOUT};
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
    Check {
        /// Also try PostgreSQL and Redis with the configured URLs (TLS
        /// included) and say what works: exit 1 if one does not answer.
        #[arg(long)]
        connect: bool,
    },
    /// Print the effective configuration, each key with the layer it came
    /// from (defaults, file, environment), secrets redacted.
    Show,
}
