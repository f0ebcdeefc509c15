//! The HTTP side: the listening socket, the listener that accepts
//! connections, and the connection tasks that read requests, admit and
//! rate-limit them and hand them to the workers.
//!
//! * [`shared`]: the listening socket (bound once per process), the open
//!   connections and the accept gate: what the listener publishes.
//! * [`listener`]: the listener (`diem/listener`, a task child), the accept
//!   loop.
//! * [`connection`]: one HTTP/1.1 connection (hyper), from request to
//!   response.
//! * [`head`]: the fields the connection adds to every answer's head.
//! * [`head_deadline`]: the header read timeout of a connection.
//! * [`drain`]: asks the open connections to close on shutdown, and waits.
//! * [`client_ip`]: who the client is, behind trusted proxies.

pub mod client_ip;
pub(crate) mod connection;
pub(crate) mod drain;
pub mod head;
pub(crate) mod head_deadline;
pub(crate) mod listener;
pub(crate) mod shared;
