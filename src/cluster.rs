//! The cluster: several diem nodes that know each other, as Erlang nodes
//! form one — on ractor_cluster, not on a protocol of diem's own.
//!
//! With `[cluster] enabled = true` the tree gets a `diem/cluster` subtree
//! (`rest_for_one`: everything below depends on the node server):
//!
//! ```text
//! cluster        rest_for_one
//! ├── server     the ractor_cluster NodeServer: listener, cookie challenge, sessions
//! ├── tls        with cluster TLS: the cluster port, TLS handshakes with a deadline
//! ├── endpoint   this node's endpoint for the others (heartbeats, control commands)
//! ├── peers      simple_one_for_one: one actor per known member address, (re)connecting
//! └── membership the member table and the failure detector
//! ```
//!
//! * [`server`], [`tls_listener`], [`endpoint`], [`peer`], [`membership`]:
//!   the actors.
//! * [`tls`]: the optional mutual TLS between members.
//! * [`endpoint_msg`]: the messages members send each other.
//! * [`shared`]: what the cluster publishes for the node (the member view).
//! * [`remote`]: a call to another member; [`fanout`]: a control command on
//!   every member, at once or rolling.
//!
//! docs/cluster.md explains the design, the guarantees and the figures.

pub mod endpoint;
pub mod endpoint_msg;
pub mod fanout;
pub mod membership;
pub mod noise;
pub mod peer;
pub mod remote;
pub mod server;
pub mod shared;
pub mod tls;
pub mod tls_listener;
