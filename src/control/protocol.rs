//! The control protocol: one JSON object per line each way.
//!
//! Request: `{"cmd": "...", ...arguments, "id": anything}` (`id` optional,
//! echoed back; with the cluster, `"node": NAME` runs it on that member and
//! `"cluster": true` on every member). Reply: `{"ok": true, "id": …, ...}`
//! or `{"ok": false, "id": …, "error": {"code": "...", "message": "..."}}`.
//!
//! [`Command`] is the one definition of the commands: serde reads and
//! writes the requests, clap parses `diem ctl`'s command line, and `help`
//! is drawn from clap's description of it ([`help`]) — so the three never
//! disagree.
//!
//! ```
//! use diem::control::protocol::{parse, Command};
//!
//! let (id, cmd) = parse(r#"{"cmd":"scale","pool":"diem/workers","n":4,"id":7}"#).unwrap();
//! assert_eq!(id, Some(serde_json::json!(7)));
//! assert_eq!(cmd, Command::Scale { pool: "diem/workers".into(), n: 4 });
//! assert_eq!(serde_json::to_value(&cmd).unwrap()["cmd"], "scale");
//! let (_, e) = parse(r#"{"cmd":"scale","pool":"diem/workers","n":"four"}"#).unwrap_err();
//! assert_eq!(e.code, "invalid_argument");
//! ```

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A command: parsed from a request line by the server, from the command
/// line by `diem ctl`, written back as a request by `diem ctl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Subcommand)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
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
    /// Every actor's load, busiest first (as etop): mailbox now and its
    /// maximum over the last second, messages/s, handler p99, the running
    /// handler's time, restarts. On a terminal, redrawn every second.
    Top {
        /// Order: msgs (messages/s), mailbox, busy (the running handler's
        /// time) or restarts.
        #[arg(long, value_enum, default_value_t)]
        #[serde(default)]
        sort: TopSort,
        /// Rows at most (default: all).
        #[arg(long)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// One report of what may be wrong: the actors under the most load,
    /// stuck handlers, long or growing mailboxes, restarts in the last
    /// minute, the stores, memory. Exit code 0 ok, 1 warn, 2 critical.
    Diagnose,
    /// Graceful restart of a child or subtree (rolling for the worker pool).
    Restart {
        /// The node's path, e.g. diem/listener, diem/store, diem/workers.
        path: String,
    },
    /// Fault injection: the child exits abnormally and its supervisor reacts.
    ///
    /// The exit is recorded as injected. Refused when the restart would
    /// exceed the supervisor's restart intensity, unless --force.
    Kill {
        /// The node's path, e.g. diem/workers/3, diem/limiter.
        path: String,
        /// Exit reason (default: an untrappable kill, reason `killed`).
        #[serde(default)]
        reason: Option<String>,
        /// Kill even if the supervisor would give up (taking its subtree,
        /// or for the root the process, down).
        #[arg(long)]
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
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
    /// A client's rate limit: its state (get), or forget it (reset).
    Limiter {
        /// What to do.
        #[command(subcommand)]
        #[serde(flatten)]
        action: LimiterAction,
    },
    /// Change the log filter (RUST_LOG syntax).
    LogLevel {
        /// The new filter, e.g. debug, or info,diem::access=warn.
        filter: String,
    },
    /// Whether this node can serve, as /readyz, with what is degraded.
    Ready,
    /// The cluster's members: state, address, round-trip time.
    Cluster,
    /// A one-time login link to the observer page (admin.addr), valid for
    /// two minutes; opens nothing by itself.
    Observe,
    /// Replace this process with a new one (live upgrade, or rollback to an
    /// older binary) without refusing a connection.
    ///
    /// The new process gets the listening sockets, builds its tree, and
    /// takes over once ready; this one then drains and exits. If the new one
    /// fails to start or is not ready within the timeout (ctl's --timeout,
    /// default control.upgrade_timeout), it is stopped and this one serves
    /// on.
    Upgrade {
        /// The new binary (default: the running executable's path, read
        /// again from disk).
        #[arg(long, value_name = "PATH")]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        binary: Option<std::path::PathBuf>,
        /// Seconds the new process may take to be ready (`diem ctl` sets it
        /// from --timeout).
        #[arg(skip)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u64>,
    },
    /// Graceful shutdown, as SIGTERM.
    Shutdown {
        /// Grace period for in-flight requests, seconds (default `http.shutdown_grace`).
        #[serde(default)]
        grace_secs: Option<u64>,
    },
}

/// How `top` orders the actors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TopSort {
    /// Messages handled per second, most first.
    #[default]
    Msgs,
    /// Mailbox length now, longest first.
    Mailbox,
    /// The running handler's time, longest first.
    Busy,
    /// Restarts, most first.
    Restarts,
}

/// What `limiter` does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Subcommand)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum LimiterAction {
    /// The client's state: remaining, reset, which store answered.
    Get {
        /// The client's address (an IPv6 address stands for its prefix).
        addr: std::net::IpAddr,
    },
    /// Forget the client in Redis and locally: its next request is a new
    /// client's.
    Reset {
        /// The client's address (an IPv6 address stands for its prefix).
        addr: std::net::IpAddr,
    },
}

/// One command of `help`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandHelp {
    /// The command name.
    pub cmd: String,
    /// Its arguments (JSON fields; `?` marks an optional one).
    pub args: String,
    /// What it does.
    pub description: String,
}

/// Every command with its arguments and description, from clap's
/// description of [`Command`].
pub fn help() -> Vec<CommandHelp> {
    Command::augment_subcommands(clap::Command::new("ctl"))
        .get_subcommands()
        .map(|sub| CommandHelp {
            cmd: sub.get_name().to_owned(),
            args: arguments(sub),
            description: sub.get_about().map(|a| a.to_string()).unwrap_or_default(),
        })
        .collect()
}

/// A command's arguments as `help` lists them: `path, reason?`, or for a
/// command with actions `action=get|reset, addr`.
fn arguments(sub: &clap::Command) -> String {
    let mut args: Vec<String> = Vec::new();
    let actions: Vec<&clap::Command> = sub.get_subcommands().collect();
    if !actions.is_empty() {
        let names: Vec<&str> = actions.iter().map(|a| a.get_name()).collect();
        args.push(format!("action={}", names.join("|")));
    }
    let own = sub.get_arguments();
    let nested = actions.first().into_iter().flat_map(|a| a.get_arguments());
    for a in own.chain(nested).filter(|a| a.get_id() != "help") {
        let name = a.get_id().as_str().replace('-', "_");
        args.push(if a.is_required_set() {
            name
        } else {
            format!("{name}?")
        });
    }
    args.join(", ")
}

/// The names of every command.
fn names() -> Vec<String> {
    Command::augment_subcommands(clap::Command::new("ctl"))
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect()
}

/// A request that cannot be carried out, as the reply's `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
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

/// An error reply as `diem ctl` reads it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorReply {
    /// Machine-readable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl Command {
    /// The request object for this command (what `diem ctl` sends).
    pub fn to_request(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({ "cmd": "help" }))
    }

    /// Arguments serde accepts but the command does not: empty names.
    fn check(&self) -> Result<(), ProtoError> {
        let empty = |name: &str, value: &str| {
            if value.is_empty() {
                Err(ProtoError::new(
                    "invalid_argument",
                    format!("`{name}` must be a non-empty string"),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Command::Restart { path } | Command::Kill { path, .. } => empty("path", path),
            Command::Scale { pool, .. } => empty("pool", pool),
            Command::LogLevel { filter } => empty("filter", filter),
            _ => Ok(()),
        }
    }
}

/// Where a request runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// On the node that received it.
    #[default]
    Local,
    /// On this member of the cluster.
    Node(String),
    /// On every member.
    Cluster,
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The id to echo.
    pub id: Option<Value>,
    /// The command.
    pub command: Command,
    /// Where it runs.
    pub target: Target,
}

impl Request {
    /// The request line for `command` on `target` (what `diem ctl` sends).
    pub fn line(command: &Command, target: &Target) -> Value {
        let mut request = command.to_request();
        match target {
            Target::Local => {}
            Target::Node(name) => request["node"] = Value::from(name.as_str()),
            Target::Cluster => request["cluster"] = Value::Bool(true),
        }
        request
    }
}

/// Parses one request line. The error carries the request's `id` when it
/// could be read.
pub fn parse(line: &str) -> Result<(Option<Value>, Command), (Option<Value>, ProtoError)> {
    parse_request(line).map(|r| (r.id, r.command))
}

/// Parses one request line with its target.
pub fn parse_request(line: &str) -> Result<Request, (Option<Value>, ProtoError)> {
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
    let target = match (args.remove("node"), args.remove("cluster")) {
        (None | Some(Value::Null), None | Some(Value::Null) | Some(Value::Bool(false))) => Target::Local,
        (Some(Value::String(name)), None | Some(Value::Null) | Some(Value::Bool(false)))
            if !name.is_empty() =>
        {
            Target::Node(name)
        }
        (None | Some(Value::Null), Some(Value::Bool(true))) => Target::Cluster,
        (node, cluster) => {
            return Err(fail(ProtoError::new(
                "invalid_argument",
                format!(
                    "`node` must be a member name and `cluster` true, not both; found node {}, cluster {}",
                    node.unwrap_or(Value::Null),
                    cluster.unwrap_or(Value::Null)
                ),
            )))
        }
    };
    match args.get("cmd") {
        Some(Value::String(c)) if names().contains(c) => {}
        Some(Value::String(c)) => {
            return Err(fail(ProtoError::new(
                "unknown_command",
                format!("unknown command `{c}`; `help` lists them"),
            )))
        }
        Some(other) => {
            return Err(fail(ProtoError::new(
                "bad_request",
                format!("`cmd` must be a string, found {other}"),
            )))
        }
        None => return Err(fail(ProtoError::new("bad_request", "`cmd` is required"))),
    }
    let command: Command = serde_json::from_value(Value::Object(args))
        .map_err(|e| fail(ProtoError::new("invalid_argument", e.to_string())))?;
    command.check().map_err(fail)?;
    Ok(Request { id, command, target })
}

/// A successful reply line (no newline): `{"ok":true,"id":…}` plus the
/// fields of `reply`.
pub fn ok(id: Option<Value>, reply: &impl Serialize) -> String {
    let mut out = Map::new();
    out.insert("ok".into(), Value::Bool(true));
    out.insert("id".into(), id.unwrap_or(Value::Null));
    if let Ok(Value::Object(fields)) = serde_json::to_value(reply) {
        out.extend(fields);
    }
    Value::Object(out).to_string()
}

/// An error reply line (no newline).
pub fn error(id: Option<Value>, e: &ProtoError) -> String {
    serde_json::json!({
        "ok": false,
        "id": id.unwrap_or(Value::Null),
        "error": e,
    })
    .to_string()
}

#[cfg(test)]
mod tests;
