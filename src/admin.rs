//! The admin listener: an HTTP port apart from the public API
//! (`admin.addr`, default `127.0.0.1:8081`), serving the observer — a live
//! page of the running tree — its event stream and its actions.
//!
//! * [`listener`]: the actor (`diem/admin`) and its accept loop.
//! * [`routes`]: what it answers.
//! * [`access`]: who may use it (loopback open, anything else behind the
//!   admin token) and the CSRF defence of its actions.
//!
//! docs/observer.md shows the page.

pub mod access;
pub(crate) mod listener;
pub(crate) mod routes;
