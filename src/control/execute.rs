//! The control plane's one seam: a request line in, a reply line out.
//!
//! [`execute`] parses the request, audits it, reads the command's
//! [`policy`](crate::control::policy) to decide where it runs — here, on
//! another member, on every member at once, or rolling — and has it
//! [`run`] here. What the cluster does with a
//! forwarded request is the cluster's (`node.cluster`): the control plane
//! imports nothing of it.
//!
//! Every command is audited: logged at info (target `diem::audit`) with
//! who asked — the peer's uid and pid on the control socket, the member or
//! admin session it came through — its arguments, and its outcome.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::control::caller::{this_member, Caller};
use crate::control::commands::run;
use crate::control::policy::Scope;
use crate::control::protocol::{self, Command, ProtoError, Request, Target};
use crate::node::Node;
use crate::stats;

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
    let policy = command.policy();
    // A command the policy runs on every node: asked here, it runs on
    // every member (which run it locally: `via` is set there).
    let target = match target {
        Target::Local
            if policy.scope == Scope::EveryNode
                && caller.on_this_socket()
                && node.with_config(|c| c.cluster.enabled) =>
        {
            Target::Cluster
        }
        other => other,
    };
    let result = match target {
        Target::Local if policy.scope == Scope::LocalOnly && !caller.on_this_socket() => Err(local_only()),
        Target::Local => run(node, command).await,
        Target::Node(member) => match on_member(node, &member, id.clone(), command, caller).await {
            // The member's own reply line, written with this request's id.
            Ok(Forwarded::Line(line)) => return line,
            Ok(Forwarded::Here(fields)) => Ok(fields),
            Err(e) => Err(e),
        },
        Target::Cluster => on_cluster(node, command, caller).await,
    };
    match result {
        Ok(fields) => protocol::ok(id, &fields),
        Err(e) => {
            tracing::info!(target: "diem::audit", uid, pid, via, command = %args, code = e.code, message = %e.message, "control command failed");
            protocol::error(id, &e)
        }
    }
}

/// `upgrade` runs only through the node's own control socket.
fn local_only() -> ProtoError {
    ProtoError::new(
        "unsupported",
        "upgrade runs only on the node's own control socket (on its host), not through another member",
    )
}

/// What a command sent to a member answered.
enum Forwarded {
    /// Another member's reply line (with the request's id).
    Line(String),
    /// This node's reply.
    Here(Value),
}

async fn on_member(
    node: &Arc<Node>,
    member: &str,
    id: Option<Value>,
    command: Command,
    caller: &Caller,
) -> Result<Forwarded, ProtoError> {
    if member == this_member(node)? {
        return run(node, command).await.map(Forwarded::Here);
    }
    if command.policy().scope == Scope::LocalOnly {
        return Err(local_only());
    }
    let mut request = command.to_request();
    request["id"] = id.unwrap_or(Value::Null);
    node.cluster
        .forward(member, request.to_string(), caller.origin(node))
        .await
        .map(Forwarded::Line)
        .map_err(|e| ProtoError::new("unreachable", e.to_string()))
}

async fn on_cluster(node: &Arc<Node>, command: Command, caller: &Caller) -> Result<Value, ProtoError> {
    let this = this_member(node)?;
    let origin = caller.origin(node);
    let request = command.to_request();
    match command.policy().scope {
        Scope::Fanout | Scope::EveryNode => {
            let nodes = node.cluster.everywhere(&this, &request, &origin).await;
            let mut reply = json!({ "nodes": nodes });
            if command == Command::Stats {
                reply["totals"] = stats::totals(nodes.values().filter_map(|a| a.reply()));
            }
            Ok(reply)
        }
        Scope::Rolling => serde_json::to_value(node.cluster.rolling(&this, &request, &origin).await)
            .map_err(|e| ProtoError::new("failed", e.to_string())),
        Scope::Local | Scope::LocalOnly => Err(ProtoError::new(
            "unsupported",
            format!(
                "`{}` does not run cluster-wide (tree, stats, ping, ready, cluster, limiter reset at once; reload, restart rolling)",
                request["cmd"].as_str().unwrap_or("?")
            ),
        )),
    }
}
