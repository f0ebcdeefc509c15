//! What members send each other: the messages of a node's cluster
//! endpoint, serialised by ractor_cluster (`RactorClusterMessage`).
//!
//! Each node's endpoint actor is registered as `diem.endpoint.<member>` and
//! joins the process group [`GROUP`] in scope [`SCOPE`]: ractor_cluster
//! keeps the group in sync across the sessions, so a member finds another's
//! endpoint through ractor's own registry, not through a list kept by hand.

use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;

/// The process-group scope of diem's cluster actors.
pub const SCOPE: &str = "diem";

/// The group of every member's endpoint.
pub const GROUP: &str = "endpoints";

/// The registered name of `member`'s endpoint.
pub fn endpoint_name(member: &str) -> String {
    format!("diem.endpoint.{member}")
}

/// The member an endpoint's registered name belongs to.
pub fn member_of(name: &str) -> Option<&str> {
    name.strip_prefix("diem.endpoint.")
}

/// A message to a member's endpoint.
#[derive(Debug, RactorClusterMessage)]
pub enum EndpointMsg {
    /// A heartbeat: echoes the sender's clock (µs).
    #[rpc]
    Ping(u64, RpcReplyPort<u64>),
    /// A control request line, with who asked (for the audit log); the
    /// reply line comes back.
    #[rpc]
    Control(String, String, RpcReplyPort<String>),
    /// The addresses of the members it sees up, its own first, one per
    /// line (how members learn each other when ractor_cluster's transitive
    /// connections are off, with TLS).
    #[rpc]
    Members(RpcReplyPort<String>),
}

/// Most addresses a member's answer to [`EndpointMsg::Members`] is read for.
pub const MAX_GOSSIP: usize = 256;
