//! `diem ctl`: send one command over the control socket and show the
//! reply.
//!
//! Exit codes: 0 when the reply is ok, 1 when it is an error, 2 when the
//! socket cannot be reached (the message names the path).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::control::render;

/// Longest wait for a reply (a rolling restart of a large pool takes a while).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The `diem ctl` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
#[command(disable_help_subcommand = true)]
pub enum CtlCommand {
    /// The supervision tree.
    Tree,
    /// Requests, latencies, limiter, PostgreSQL pool, restarts, memory.
    Stats,
    /// Version, uptime, node name.
    Ping,
    /// The commands of the control protocol.
    Help,
    /// Graceful restart of a child or subtree (rolling for the worker pool).
    Restart {
        /// e.g. diem/listener, diem/store, diem/workers.
        path: String,
    },
    /// Crash injection: the child exits abnormally and its supervisor reacts.
    Kill {
        /// e.g. diem/workers/3, diem/limiter.
        path: String,
        /// Exit reason (default: an untrappable kill).
        reason: Option<String>,
    },
    /// Resize a dynamic pool.
    Scale {
        /// The pool's path, e.g. diem/workers.
        pool: String,
        /// The new size.
        n: usize,
    },
    /// Re-read the config file and apply what can change live.
    Reload,
    /// Change the log filter (RUST_LOG syntax).
    LogLevel {
        /// e.g. debug, or info,diem::access=warn.
        filter: String,
    },
    /// Graceful shutdown, as SIGTERM.
    Shutdown {
        /// Grace period for in-flight requests, in seconds.
        grace_secs: Option<u64>,
    },
}

impl CtlCommand {
    /// The request object.
    pub fn request(&self) -> Value {
        match self {
            CtlCommand::Tree => json!({ "cmd": "tree" }),
            CtlCommand::Stats => json!({ "cmd": "stats" }),
            CtlCommand::Ping => json!({ "cmd": "ping" }),
            CtlCommand::Help => json!({ "cmd": "help" }),
            CtlCommand::Restart { path } => json!({ "cmd": "restart", "path": path }),
            CtlCommand::Kill { path, reason } => json!({ "cmd": "kill", "path": path, "reason": reason }),
            CtlCommand::Scale { pool, n } => json!({ "cmd": "scale", "pool": pool, "n": n }),
            CtlCommand::Reload => json!({ "cmd": "reload" }),
            CtlCommand::LogLevel { filter } => json!({ "cmd": "log-level", "filter": filter }),
            CtlCommand::Shutdown { grace_secs } => json!({ "cmd": "shutdown", "grace_secs": grace_secs }),
        }
    }
}

/// Why `diem ctl` failed before it got a reply.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The socket could not be reached.
    #[error("cannot reach the control socket at {path}: {reason} (is diem running? see --socket)")]
    Unreachable {
        /// The path tried.
        path: String,
        /// What happened.
        reason: String,
    },
    /// The server closed or answered garbage.
    #[error("bad reply from {path}: {reason}")]
    BadReply {
        /// The path used.
        path: String,
        /// What happened.
        reason: String,
    },
}

/// Sends `request` to the socket at `path` and returns the reply.
pub async fn call(path: &Path, request: &Value) -> Result<Value, CtlError> {
    let shown = path.display().to_string();
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|e| CtlError::Unreachable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    let mut line = request.to_string();
    line.push('\n');
    let bad = |reason: String| CtlError::BadReply {
        path: shown.clone(),
        reason,
    };
    // A server that refuses the connection replies and closes before reading:
    // a failed write is reported only if no reply can be read either.
    let written = stream.write_all(line.as_bytes()).await;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    match tokio::time::timeout(REPLY_TIMEOUT, reader.read_line(&mut reply)).await {
        Err(_) => return Err(bad(format!("no reply within {REPLY_TIMEOUT:?}"))),
        Ok(Ok(n)) if n > 0 => {}
        Ok(result) => {
            let reason = match (written, result) {
                (Err(e), _) | (Ok(()), Err(e)) => e.to_string(),
                (Ok(()), Ok(_)) => "the connection closed without a reply".to_owned(),
            };
            return Err(bad(reason));
        }
    }
    serde_json::from_str(&reply).map_err(|e| bad(format!("{e}: {reply}")))
}

/// Runs `diem ctl`; returns the exit code.
pub async fn run(socket: &Path, command: &CtlCommand, json_output: bool) -> i32 {
    let reply = match call(socket, &command.request()).await {
        Ok(r) => r,
        Err(e @ CtlError::Unreachable { .. }) => {
            eprintln!("diem ctl: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("diem ctl: {e}");
            return 1;
        }
    };
    let ok = reply["ok"] == Value::Bool(true);
    if json_output {
        println!("{reply}");
    } else if ok {
        print!(
            "{}",
            render::render(command, &reply, std::io::stdout().is_terminal())
        );
    } else {
        eprintln!(
            "diem ctl: {} ({})",
            reply["error"]["message"].as_str().unwrap_or("error"),
            reply["error"]["code"].as_str().unwrap_or("?")
        );
    }
    if ok {
        0
    } else {
        1
    }
}
