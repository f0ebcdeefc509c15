//! The admin listener: an HTTP port apart from the public API
//! (`admin.addr`, default `127.0.0.1:8081`), serving the observer — a live
//! page of the running tree — its event stream and its actions.
//!
//! * [`listener`]: the actor (`diem/admin`) and its accept loop.
//! * [`routes`]: what it answers.
//! * [`access`]: who may use it — every caller logs in, loopback included
//!   (the admin token, or a one-time link of `diem ctl observe`) — and the
//!   CSRF defence of its actions.
//!
//! docs/observer.md shows the page.

pub mod access;
pub(crate) mod listener;
pub(crate) mod routes;
