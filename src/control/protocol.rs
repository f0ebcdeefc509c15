//! The control protocol: one JSON object per line each way.
//!
//! Request: `{"cmd": "...", ...arguments, "id": anything}` (`id` optional,
//! echoed back). Reply: `{"ok": true, "id": …, ...}` or
//! `{"ok": false, "id": …, "error": {"code": "...", "message": "..."}}`.
//!
//! ```
//! use diem::control::protocol::{parse, Command};
//!
//! let (id, cmd) = parse(r#"{"cmd":"scale","pool":"diem/workers","n":4,"id":7}"#).unwrap();
//! assert_eq!(id, Some(serde_json::json!(7)));
//! assert_eq!(cmd, Command::Scale { pool: "diem/workers".into(), n: 4 });
//! let (_, e) = parse(r#"{"cmd":"scale","pool":"diem/workers","n":"four"}"#).unwrap_err();
//! assert_eq!(e.code, "invalid_argument");
//! ```

use serde_json::{Map, Value};

/// A command: parsed from a request line by the server, from the command
/// line by `diem ctl` (so both always agree on names and arguments).
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
#[command(disable_help_subcommand = true)]
pub enum Command {
    /// The commands and their arguments.
    Help,
    /// Version, uptime, node name.
    Ping,
    /// The supervision tree.
    Tree,
    /// Counters, latencies, limiter, pool, restarts, memory.
    Stats,
    /// Graceful restart of a child or subtree (rolling for the worker pool).
    Restart {
        /// The node's path, e.g. diem/listener, diem/store, diem/workers.
        path: String,
    },
    /// Crash injection: the child exits abnormally and its supervisor reacts.
    Kill {
        /// The node's path, e.g. diem/workers/3, diem/limiter.
        path: String,
        /// Exit reason (default: an untrappable kill, reason `killed`).
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
        /// The new filter, e.g. debug, or info,diem::access=warn.
        filter: String,
    },
    /// Graceful shutdown, as SIGTERM.
    Shutdown {
        /// Grace period for in-flight requests (default `http.shutdown_grace_secs`).
        grace_secs: Option<u64>,
    },
}

impl Command {
    /// The request object for this command (what `diem ctl` sends).
    pub fn to_request(&self) -> Value {
        use serde_json::json;
        match self {
            Command::Help => json!({ "cmd": "help" }),
            Command::Ping => json!({ "cmd": "ping" }),
            Command::Tree => json!({ "cmd": "tree" }),
            Command::Stats => json!({ "cmd": "stats" }),
            Command::Reload => json!({ "cmd": "reload" }),
            Command::Restart { path } => json!({ "cmd": "restart", "path": path }),
            Command::Kill { path, reason } => json!({ "cmd": "kill", "path": path, "reason": reason }),
            Command::Scale { pool, n } => json!({ "cmd": "scale", "pool": pool, "n": n }),
            Command::LogLevel { filter } => json!({ "cmd": "log-level", "filter": filter }),
            Command::Shutdown { grace_secs } => json!({ "cmd": "shutdown", "grace_secs": grace_secs }),
        }
    }
}

/// One command of `help`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CommandHelp {
    /// The command name.
    pub cmd: &'static str,
    /// Its arguments (JSON fields).
    pub args: &'static str,
    /// `read` (changes nothing) or `change`.
    pub kind: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// Every command, reads first.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        cmd: "help",
        args: "",
        kind: "read",
        description: "the commands with their arguments",
    },
    CommandHelp {
        cmd: "ping",
        args: "",
        kind: "read",
        description: "version, uptime and node name",
    },
    CommandHelp {
        cmd: "tree",
        args: "",
        kind: "read",
        description: "the supervision tree with state, restarts and uptime",
    },
    CommandHelp {
        cmd: "stats",
        args: "",
        kind: "read",
        description: "requests, latencies, limiter, postgres pool, restarts, memory",
    },
    CommandHelp {
        cmd: "restart",
        args: "path",
        kind: "change",
        description: "graceful restart of a child or subtree (rolling for the worker pool)",
    },
    CommandHelp {
        cmd: "kill",
        args: "path, reason?",
        kind: "change",
        description: "crash injection: the child exits abnormally and its supervisor reacts",
    },
    CommandHelp {
        cmd: "scale",
        args: "pool, n",
        kind: "change",
        description: "resize a dynamic pool (up to workers.max)",
    },
    CommandHelp {
        cmd: "reload",
        args: "",
        kind: "change",
        description: "re-read the config file and apply what can change live",
    },
    CommandHelp {
        cmd: "log-level",
        args: "filter",
        kind: "change",
        description: "change the log filter (RUST_LOG syntax)",
    },
    CommandHelp {
        cmd: "shutdown",
        args: "grace_secs?",
        kind: "change",
        description: "graceful shutdown, as SIGTERM",
    },
];

/// A request that cannot be carried out, as the reply's `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtoError {
    /// Machine-readable code, e.g. `unknown_command`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

impl ProtoError {
    /// An error with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn string(args: &Map<String, Value>, name: &str) -> Result<String, ProtoError> {
    match args.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => Err(ProtoError::new(
            "invalid_argument",
            format!("`{name}` must be a non-empty string, found {other}"),
        )),
        None => Err(ProtoError::new(
            "invalid_argument",
            format!("`{name}` is required"),
        )),
    }
}

fn optional_string(args: &Map<String, Value>, name: &str) -> Result<Option<String>, ProtoError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(args, name).map(Some),
    }
}

fn number(args: &Map<String, Value>, name: &str, required: bool) -> Result<Option<u64>, ProtoError> {
    match args.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        None => Err(ProtoError::new(
            "invalid_argument",
            format!("`{name}` is required"),
        )),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        // Accept "4" as well as 4, for hand-typed requests.
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(ProtoError::new(
            "invalid_argument",
            format!("`{name}` must be a whole number, found {other}"),
        )),
    }
}

/// Parses one request line. The error carries the request's `id` when it
/// could be read.
pub fn parse(line: &str) -> Result<(Option<Value>, Command), (Option<Value>, ProtoError)> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        (
            None,
            ProtoError::new("bad_json", format!("the request is not valid JSON: {e}")),
        )
    })?;
    let Value::Object(mut args) = value else {
        return Err((
            None,
            ProtoError::new("bad_request", "the request must be a JSON object"),
        ));
    };
    let id = args.remove("id");
    let fail = |e: ProtoError| (id.clone(), e);
    let cmd = match args.remove("cmd") {
        Some(Value::String(c)) => c,
        Some(other) => {
            return Err(fail(ProtoError::new(
                "bad_request",
                format!("`cmd` must be a string, found {other}"),
            )))
        }
        None => return Err(fail(ProtoError::new("bad_request", "`cmd` is required"))),
    };
    let command = match cmd.as_str() {
        "help" => Command::Help,
        "ping" => Command::Ping,
        "tree" => Command::Tree,
        "stats" => Command::Stats,
        "reload" => Command::Reload,
        "restart" => Command::Restart {
            path: string(&args, "path").map_err(fail)?,
        },
        "kill" => Command::Kill {
            path: string(&args, "path").map_err(fail)?,
            reason: optional_string(&args, "reason").map_err(fail)?,
        },
        "scale" => Command::Scale {
            pool: string(&args, "pool").map_err(fail)?,
            n: number(&args, "n", true)
                .map_err(fail)?
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(usize::MAX),
        },
        "log-level" => Command::LogLevel {
            filter: string(&args, "filter").map_err(fail)?,
        },
        "shutdown" => Command::Shutdown {
            grace_secs: number(&args, "grace_secs", false).map_err(fail)?,
        },
        other => {
            return Err(fail(ProtoError::new(
                "unknown_command",
                format!("unknown command `{other}`; `help` lists them"),
            )))
        }
    };
    Ok((id, command))
}

/// A successful reply line (no newline): `{"ok":true,"id":…}` plus `fields`.
pub fn ok(id: Option<Value>, fields: Value) -> String {
    let mut reply = Map::new();
    reply.insert("ok".into(), Value::Bool(true));
    reply.insert("id".into(), id.unwrap_or(Value::Null));
    if let Value::Object(fields) = fields {
        reply.extend(fields);
    }
    Value::Object(reply).to_string()
}

/// An error reply line (no newline).
pub fn error(id: Option<Value>, e: &ProtoError) -> String {
    serde_json::json!({
        "ok": false,
        "id": id.unwrap_or(Value::Null),
        "error": { "code": e.code, "message": e.message },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests() {
        assert_eq!(parse("{").unwrap_err().1.code, "bad_json");
        assert_eq!(parse("[1]").unwrap_err().1.code, "bad_request");
        assert_eq!(
            parse(r#"{"id":3}"#).unwrap_err(),
            (
                Some(Value::from(3)),
                ProtoError::new("bad_request", "`cmd` is required")
            )
        );
        assert_eq!(parse(r#"{"cmd":5}"#).unwrap_err().1.code, "bad_request");
        assert_eq!(parse(r#"{"cmd":"fly"}"#).unwrap_err().1.code, "unknown_command");
        assert_eq!(parse(r#"{"cmd":"kill"}"#).unwrap_err().1.code, "invalid_argument");
        assert_eq!(
            parse(r#"{"cmd":"kill","path":3}"#).unwrap_err().1.code,
            "invalid_argument"
        );
        assert_eq!(
            parse(r#"{"cmd":"scale","pool":"p","n":-1}"#).unwrap_err().1.code,
            "invalid_argument"
        );
    }

    #[test]
    fn every_command_round_trips_through_its_request() {
        for c in [
            Command::Help,
            Command::Ping,
            Command::Tree,
            Command::Stats,
            Command::Reload,
            Command::Restart {
                path: "diem/store".into(),
            },
            Command::Kill {
                path: "diem/limiter".into(),
                reason: Some("chaos".into()),
            },
            Command::Kill {
                path: "diem/limiter".into(),
                reason: None,
            },
            Command::Scale {
                pool: "diem/workers".into(),
                n: 3,
            },
            Command::LogLevel {
                filter: "debug".into(),
            },
            Command::Shutdown { grace_secs: Some(5) },
            Command::Shutdown { grace_secs: None },
        ] {
            assert_eq!(parse(&c.to_request().to_string()).unwrap().1, c);
        }
    }

    #[test]
    fn replies_echo_the_id() {
        let r: Value = serde_json::from_str(&ok(Some("a".into()), serde_json::json!({"x": 1}))).unwrap();
        assert_eq!(r, serde_json::json!({"ok": true, "id": "a", "x": 1}));
        let e: Value = serde_json::from_str(&error(None, &ProtoError::new("c", "m"))).unwrap();
        assert_eq!(e["error"]["code"], "c");
        assert_eq!(e["id"], Value::Null);
    }
}
