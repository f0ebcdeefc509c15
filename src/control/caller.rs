//! Who asked for a control command, as the audit log names them, and the
//! member a command runs on.

use crate::control::protocol::ProtoError;
use crate::node::Node;

/// Who asked for a command.
#[derive(Clone, Debug, Default)]
pub(crate) struct Caller {
    /// The peer's uid on the control socket.
    pub(crate) uid: Option<u32>,
    /// The peer's pid, when the kernel tells it.
    pub(crate) pid: Option<i32>,
    /// For a command from another member or from the admin page: who
    /// asked, as the audit log shows it.
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

    /// A caller that is not on the local control socket: a command another
    /// member forwarded, or one from the admin page, described by `origin`
    /// (`member=a uid=0 pid=7`, `admin-http 127.0.0.1:5000 session=3f…`).
    pub(crate) fn remote(origin: String) -> Self {
        Self {
            via: Some(origin),
            ..Self::default()
        }
    }

    /// Whether the caller is on this node's own control socket.
    pub(crate) fn on_this_socket(&self) -> bool {
        self.via.is_none()
    }

    /// This caller as the origin of a command forwarded to another member.
    pub(crate) fn origin(&self, node: &Node) -> String {
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

/// This node's member name, or an error when the cluster is off.
pub(crate) fn this_member(node: &Node) -> Result<String, ProtoError> {
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
