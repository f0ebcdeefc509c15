//! What each control command does: a dispatcher from [`Command`] to one
//! call of the supervisors' API or of the node, and its typed reply.
//! Reads (`help`, `ping`, `tree`, `stats`) change nothing; changes act on
//! the tree through the supervisors' own API, so the tree reacts exactly
//! as to any other start, stop or crash.
//!
//! Every command is audited: logged at info (target `diem::audit`) with
//! who asked — the peer's uid and pid on the control socket — its
//! arguments, and its outcome.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use supervisors::{resolve, snapshot, KillOutcome, Restarted, SupervisorError, SupervisorRef};

use crate::cluster::shared::{MemberState, MemberView};
use crate::cluster::{fanout, remote};
use crate::control::protocol::{self, Command, LimiterAction, ProtoError, Request, Target};
use crate::control::reply::{
    Died, HelpReply, KillReply, LogLevelReply, PingReply, Replacement, ResetReply, RestartReply, ScaleReply,
    ShutdownReply, TreeReply,
};
use crate::node::Node;
use crate::reload::reload;
use crate::stats;
use crate::tree_paths::POOL;
use crate::upgrade::upgrade_msg;

/// Who asked for a command.
#[derive(Clone, Debug, Default)]
pub(crate) struct Caller {
    /// The peer's uid on the control socket.
    pub(crate) uid: Option<u32>,
    /// The peer's pid, when the kernel tells it.
    pub(crate) pid: Option<i32>,
    /// For a command from another member: which, and who asked there.
    pub(crate) via: Option<String>,
}

impl Caller {
    /// A caller on the local control socket.
    pub(crate) fn local(uid: u32, pid: Option<i32>) -> Self {
        Self {
            uid: Some(uid),
            pid,
            via: None,
        }
    }

    /// A command from the observer page, by the browser at `peer`, which
    /// proved itself as `who` (its session's label, or the bearer token).
    pub(crate) fn admin(peer: std::net::SocketAddr, who: &crate::admin::access::Proof) -> Self {
        Self {
            via: Some(format!("admin-http {peer} {who}")),
            ..Self::default()
        }
    }

    /// A command another member forwarded, described by `origin`.
    pub(crate) fn remote(origin: String) -> Self {
        Self {
            via: Some(origin),
            ..Self::default()
        }
    }

    /// This caller as the origin of a command forwarded to another member.
    fn origin(&self, node: &Node) -> String {
        let this = node.with_config(|c| c.cluster.member_name(&c.node));
        match &self.via {
            // The member it came through, then who asked there.
            Some(via) => format!("member={this} {via}"),
            None => format!(
                "member={this} uid={} pid={}",
                self.uid.map_or("?".to_owned(), |u| u.to_string()),
                self.pid.map_or("?".to_owned(), |p| p.to_string())
            ),
        }
    }
}

/// Longest a command forwarded to another member may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one request line from `caller` and returns the reply line.
pub(crate) async fn execute(node: &Arc<Node>, line: &str, caller: &Caller) -> String {
    let (uid, pid, via) = (caller.uid, caller.pid, caller.via.as_deref());
    let request = match protocol::parse_request(line) {
        Ok(r) => r,
        Err((id, e)) => {
            tracing::info!(target: "diem::audit", uid, pid, via, code = e.code, "control request refused");
            return protocol::error(id, &e);
        }
    };
    let Request { id, command, target } = request;
    let args = Request::line(&command, &target).to_string();
    tracing::info!(target: "diem::audit", uid, pid, via, command = %args, "control command");
    // A reset must reach every member's deny cache: with the cluster, a
    // local `limiter reset` is a cluster-wide one (the members run it
    // locally: `via` is set there).
    let everywhere = via.is_none()
        && matches!(
            command,
            Command::Limiter {
                action: LimiterAction::Reset { .. }
            }
        )
        && node.with_config(|c| c.cluster.enabled);
    let target = if everywhere && target == Target::Local {
        Target::Cluster
    } else {
        target
    };
    // Recorded in this node's event log when it ran here.
    let action = if target == Target::Local {
        Action::of(&command)
    } else {
        None
    };
    let result = match target {
        Target::Local if via.is_some() && matches!(command, Command::Upgrade { .. }) => Err(local_only()),
        Target::Local => run(node, command).await,
        Target::Node(member) => match on_member(node, &member, &command, caller).await {
            // The member's own reply, under this request's id.
            Ok(Reply::Line(line)) => return with_id(&line, id),
            Ok(Reply::Fields(fields)) => Ok(fields),
            Err(e) => Err(e),
        },
        Target::Cluster => on_cluster(node, command, caller).await,
    };
    match result {
        Ok(fields) => {
            if let Some(action) = action {
                action.record(node, &fields);
            }
            protocol::ok(id, &fields)
        }
        Err(e) => {
            tracing::info!(target: "diem::audit", uid, pid, via, command = %args, code = e.code, message = %e.message, "control command failed");
            protocol::error(id, &e)
        }
    }
}

/// An operator action that changes the tree or the node, for the
/// observer's event log (reads are not recorded).
struct Action {
    kind: &'static str,
    path: Option<String>,
}

impl Action {
    fn of(command: &Command) -> Option<Self> {
        let (kind, path) = match command {
            Command::Kill { path, .. } => ("kill", Some(path)),
            Command::Restart { path } => ("restart", Some(path)),
            Command::Scale { pool, .. } => ("scale", Some(pool)),
            Command::Reload => ("reload", None),
            Command::LogLevel { .. } => ("log_level", None),
            Command::Upgrade { .. } => ("upgrade", None),
            _ => return None,
        };
        Some(Self {
            kind,
            path: path.cloned(),
        })
    }

    /// Records the action with what its reply says it did.
    fn record(self, node: &Node, reply: &Value) {
        let detail = match self.kind {
            "kill" => match reply["replaced_by"]["recovery_us"].as_u64() {
                Some(us) => format!(
                    "{} (injected); replaced in {us} µs",
                    reply["died"]["reason"].as_str().unwrap_or("killed")
                ),
                None => format!(
                    "{} (injected); now {}",
                    reply["died"]["reason"].as_str().unwrap_or("killed"),
                    reply["state"]
                ),
            },
            "restart" => "graceful restart".to_owned(),
            "reload" => format!("changed: {}", reply["changed"]),
            "upgrade" => format!(
                "pid {} -> pid {} ({})",
                reply["old"]["pid"], reply["new"]["pid"], reply["new"]["version"]
            ),
            "scale" => format!("{} -> {}", reply["from"], reply["to"]),
            _ => format!("filter {}", reply["filter"]),
        };
        node.observer.record(self.kind, self.path.as_deref(), detail);
    }
}

/// A reply line with `id` in place of the one it had.
fn with_id(line: &str, id: Option<Value>) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(mut fields)) => {
            fields.insert("id".into(), id.unwrap_or(Value::Null));
            Value::Object(fields).to_string()
        }
        _ => line.to_owned(),
    }
}

/// What a command on a member answered.
enum Reply {
    /// A reply line from another member.
    Line(String),
    /// This node's reply.
    Fields(Value),
}

fn this_member(node: &Node) -> Result<String, ProtoError> {
    node.with_config(|c| {
        if c.cluster.enabled {
            Ok(c.cluster.member_name(&c.node))
        } else {
            Err(ProtoError::new(
                "unsupported",
                "the cluster is not enabled on this node ([cluster] enabled = true)",
            ))
        }
    })
}

/// `upgrade` runs only through the node's own control socket: the binary
/// is a path on its host, and the hand-over stops the cluster connection
/// a forwarded reply would travel back on.
fn local_only() -> ProtoError {
    ProtoError::new(
        "unsupported",
        "upgrade runs only on the node's own control socket (on its host), not through another member",
    )
}

async fn on_member(
    node: &Arc<Node>,
    member: &str,
    command: &Command,
    caller: &Caller,
) -> Result<Reply, ProtoError> {
    if member == this_member(node)? {
        return run(node, command.clone()).await.map(Reply::Fields);
    }
    if matches!(command, Command::Upgrade { .. }) {
        return Err(local_only());
    }
    remote::control(
        member,
        command.to_request().to_string(),
        caller.origin(node),
        REMOTE_TIMEOUT,
    )
    .await
    .map(Reply::Line)
    .map_err(|e| ProtoError::new("unreachable", e.to_string()))
}

async fn on_cluster(node: &Arc<Node>, command: Command, caller: &Caller) -> Result<Value, ProtoError> {
    let this = this_member(node)?;
    let origin = caller.origin(node);
    let request = command.to_request();
    match command {
        Command::Tree | Command::Stats | Command::Ping | Command::Ready | Command::Cluster => {
            let nodes = fanout::everywhere(&this, &request, &origin, REMOTE_TIMEOUT).await;
            let mut reply = json!({ "nodes": nodes });
            if command == Command::Stats {
                reply["totals"] = stats::totals(nodes.values().filter_map(|a| match a {
                    fanout::Answer::Reply(v) => Some(v),
                    fanout::Answer::Failed { .. } => None,
                }));
            }
            Ok(reply)
        }
        Command::Limiter {
            action: LimiterAction::Reset { .. },
        } => {
            let nodes = fanout::everywhere(&this, &request, &origin, REMOTE_TIMEOUT).await;
            Ok(json!({ "nodes": nodes }))
        }
        Command::Reload | Command::Restart { .. } => {
            let ready_within = Duration::from_secs(30);
            reply(fanout::rolling(&this, &request, &origin, REMOTE_TIMEOUT, ready_within).await)
        }
        other => Err(ProtoError::new(
            "unsupported",
            format!(
                "`{}` does not run cluster-wide (tree, stats, ping, ready, cluster, limiter reset at once; reload, restart rolling)",
                other.to_request()["cmd"].as_str().unwrap_or("?")
            ),
        )),
    }
}

fn failed(e: SupervisorError) -> ProtoError {
    match e {
        SupervisorError::NotFound(path) => ProtoError::new("not_found", format!("no node at `{path}`")),
        SupervisorError::NotDynamic(path) => {
            ProtoError::new("not_a_pool", format!("`{path}` is not a dynamic pool"))
        }
        SupervisorError::NotRunning(id) => {
            ProtoError::new("not_running", format!("`{id}` has no running process"))
        }
        e @ SupervisorError::WouldExceedIntensity { .. } => {
            ProtoError::new("would_exceed_intensity", e.to_string())
        }
        other => ProtoError::new("failed", other.to_string()),
    }
}

fn root(node: &Node) -> Result<SupervisorRef, ProtoError> {
    node.root()
        .cloned()
        .ok_or_else(|| ProtoError::new("unavailable", "the tree is not running"))
}

fn reply(r: impl Serialize) -> Result<Value, ProtoError> {
    serde_json::to_value(r).map_err(|e| ProtoError::new("failed", e.to_string()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs a parsed command.
pub(crate) async fn run(node: &Arc<Node>, command: Command) -> Result<Value, ProtoError> {
    match command {
        Command::Help => reply(HelpReply {
            commands: protocol::help(),
        }),
        Command::Ping => reply(PingReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            node: node.config().node.name.clone(),
            pid: std::process::id(),
            uptime_ms: millis(node.started_at.elapsed()),
        }),
        Command::Tree => reply(TreeReply {
            tree: tree(node).await?,
        }),
        Command::Stats => reply(stats::collect(node).await),
        Command::Restart { path } => reply(restart(node, &path).await?),
        Command::Kill { path, reason, force } => reply(kill(node, &path, reason, force).await?),
        Command::Scale { pool, n } => reply(scale(node, &pool, n).await?),
        Command::Reload => reply(
            reload(node)
                .await
                .map_err(|e| ProtoError::new("invalid_config", e.to_string()))?,
        ),
        Command::Limiter { action } => match action {
            LimiterAction::Get { addr } => reply(node.limiter.peek(addr).await),
            LimiterAction::Reset { addr } => {
                let (key, redis) = node.limiter.forget(addr).await;
                reply(ResetReply { key, redis })
            }
        },
        Command::Ready => reply(crate::health::readiness(node).await),
        Command::Cluster => {
            this_member(node)?;
            let refused_port: serde_json::Map<String, Value> = crate::cluster::noise::NOISE
                .totals()
                .into_iter()
                .map(|(reason, n)| (reason.as_str().to_owned(), json!(n)))
                .collect();
            reply(json!({
                "members": members(node),
                "no_session_with": node.cluster.refused(),
                "refused_at_cluster_port": refused_port,
            }))
        }
        Command::LogLevel { filter } => {
            let log = node
                .log
                .as_ref()
                .ok_or_else(|| ProtoError::new("unsupported", "this process does not own its logging"))?;
            let previous = log.current();
            log.set(&filter)
                .map_err(|e| ProtoError::new("invalid_argument", e.to_string()))?;
            tracing::info!(%filter, %previous, "log filter changed");
            reply(LogLevelReply { filter, previous })
        }
        Command::Observe => {
            let config = node.config();
            let addr = config.admin.listen().ok_or_else(|| {
                ProtoError::new("unsupported", "the admin listener is off (admin.addr is empty)")
            })?;
            // The port bound (admin.addr may ask for any, port 0).
            let port = node
                .admin_port()
                .ok_or_else(|| ProtoError::new("unavailable", "the admin listener is not running (yet)"))?;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                match addr.ip() {
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                }
            };
            // The caller is authenticated already (the socket's peer uid, or
            // the member that forwarded it): a one-time login link.
            let ticket = node.admin.mint_ticket();
            reply(json!({
                "url": format!("http://{host}:{port}/observer/login?ticket={ticket}"),
                "page": format!("http://{host}:{port}/observer"),
                "expires_in_secs": crate::admin::access::TICKET_LIFETIME.as_secs(),
            }))
        }
        Command::Upgrade { binary, timeout_secs } => {
            if let Some(binary) = binary.as_ref().filter(|b| !b.is_absolute()) {
                return Err(ProtoError::new(
                    "invalid_argument",
                    format!("`binary` must be an absolute path, found {}", binary.display()),
                ));
            }
            let timeout = timeout_secs
                .map(Duration::from_secs)
                .unwrap_or_else(|| node.config().control.upgrade_timeout);
            let report = upgrade_msg::request(node, binary, timeout)
                .await
                .map_err(|e| ProtoError::new(e.code(), e.to_string()))?;
            reply(report)
        }
        Command::Shutdown { grace_secs } => {
            let grace = node.request_shutdown(grace_secs.map(Duration::from_secs));
            tracing::info!(grace = ?grace, "shutdown requested over the control socket");
            reply(ShutdownReply {
                shutting_down: true,
                grace_secs: grace.as_secs(),
            })
        }
    }
}

/// This node and the members it knows, as `cluster` shows them.
pub(crate) fn members(node: &Node) -> Vec<MemberView> {
    let config = node.config();
    let mut members = vec![MemberView {
        name: config.cluster.member_name(&config.node),
        addr: config.cluster.advertised(),
        state: MemberState::Up,
        since_ms: millis(node.started_at.elapsed()),
        rtt_ms: None,
        last_heard_ms: None,
        this_node: true,
    }];
    members.extend(node.cluster.members().iter().cloned());
    members
}

/// The tree, with the worker pool's admission figures on its node.
pub(crate) async fn tree(node: &Node) -> Result<supervisors::TreeNode, ProtoError> {
    let mut tree = snapshot(&root(node)?).await.map_err(failed)?;
    if let Some(pool) = tree.find_mut(POOL) {
        pool.annotations
            .insert("queue_depth".into(), node.workers.in_flight() as u64);
        pool.annotations
            .insert("capacity".into(), node.workers.capacity() as u64);
    }
    Ok(tree)
}

async fn restart(node: &Node, path: &str) -> Result<RestartReply, ProtoError> {
    let found = resolve(&root(node)?, path).await.map_err(failed)?;
    if found.parent.is_none() {
        return Err(ProtoError::new(
            "unsupported",
            "the root is the node itself: restart its children, or use shutdown and let the service manager start it",
        ));
    }
    let path = path.to_owned();
    Ok(match found.restart().await.map_err(failed)? {
        Restarted::Rolling { replaced } => RestartReply {
            path,
            rolling: Some(true),
            replaced: Some(replaced),
            ..RestartReply::default()
        },
        Restarted::Replaced { by } => RestartReply {
            path,
            replaced_by: Some(by),
            ..RestartReply::default()
        },
        Restarted::Restarted { old, new } => RestartReply {
            path,
            old,
            new,
            ..RestartReply::default()
        },
    })
}

async fn kill(node: &Node, path: &str, reason: Option<String>, force: bool) -> Result<KillReply, ProtoError> {
    let found = resolve(&root(node)?, path).await.map_err(failed)?;
    if found.parent.is_none() {
        return Err(ProtoError::new(
            "unsupported",
            "the root is the node itself: kill its children, or use shutdown",
        ));
    }
    let shown = reason.clone().unwrap_or_else(|| "killed".to_owned());
    let killed = found.kill(reason, force).await.map_err(failed)?;
    let (replaced_by, state) = match killed.outcome {
        KillOutcome::Replaced(new) => (
            Some(Replacement {
                actor: new.actor,
                incarnation: new.incarnation,
                recovery_us: killed.recovery_us,
            }),
            "running".to_owned(),
        ),
        KillOutcome::NotRestarted => {
            let state = match found.parent.as_ref().map(|p| p.which_children()) {
                Some(children) => match children.await {
                    Ok(children) => children
                        .into_iter()
                        .find(|c| c.id == found.id)
                        .map_or("removed".to_owned(), |c| c.state.to_string()),
                    Err(_) => "its supervisor stopped".to_owned(),
                },
                None => "removed".to_owned(),
            };
            (None, state)
        }
    };
    Ok(KillReply {
        path: path.to_owned(),
        died: Died {
            actor: killed.died.actor,
            incarnation: killed.died.incarnation,
            reason: shown,
        },
        replaced_by,
        state,
    })
}

/// Resizes the pool at `pool` to `n` instances (1 to `workers.max`).
pub(crate) async fn scale(node: &Node, pool: &str, n: usize) -> Result<ScaleReply, ProtoError> {
    let max = node.config().workers.max;
    if n == 0 || n > max {
        return Err(ProtoError::new(
            "invalid_argument",
            format!("`n` must be from 1 to workers.max ({max}), found {n}"),
        ));
    }
    let found = resolve(&root(node)?, pool).await.map_err(failed)?;
    let sup = found
        .supervisor()
        .ok_or_else(|| ProtoError::new("not_a_pool", format!("`{pool}` is not a dynamic pool")))?;
    let scaled = sup.scale_to(n).await.map_err(|e| match e {
        SupervisorError::NotDynamic(_) => {
            ProtoError::new("not_a_pool", format!("`{pool}` is not a dynamic pool"))
        }
        other => failed(other),
    })?;
    tracing::info!(pool, from = scaled.from, to = scaled.to, "pool scaled");
    Ok(ScaleReply {
        pool: pool.to_owned(),
        from: scaled.from,
        to: scaled.to,
    })
}
