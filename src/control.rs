//! The control socket: operate a running node like `kubectl` and Erlang's
//! observer.
//!
//! * [`socket`]: the control socket actor (`diem/control`).
//! * [`listening`]: the listening socket it accepts on, held by the node.
//! * [`protocol`]: one JSON object per line each way.
//! * [`commands`]: what each command does; [`reply`]: what it answers.
//! * [`client`], [`options`], [`render`]: `diem ctl`.
//!
//! The commands, with an example of each, are in docs/control.md.

pub mod client;
pub(crate) mod commands;
pub(crate) mod listening;
pub mod options;
pub mod protocol;
pub(crate) mod render;
pub(crate) mod reply;
pub(crate) mod socket;
