//! The control socket: operate a running node like `kubectl` and Erlang's
//! observer.
//!
//! * [`socket`]: the control socket (`diem/control`, a task child).
//! * [`shared`]: the listening socket it accepts on, held by the node.
//! * [`protocol`]: one JSON object per line each way.
//! * [`execute`]: the one seam — parse, audit, route by [`policy`].
//! * [`commands`]: what each command does; [`tree_ops`]: what commands do
//!   to the tree; [`reply`]: what they answer; [`caller`]: who asked.
//! * [`client`], [`options`], [`render`]: `diem ctl`.
//!
//! The commands, with an example of each, are in docs/control.md.

pub(crate) mod caller;
pub mod client;
pub(crate) mod commands;
pub(crate) mod execute;
pub mod options;
pub mod policy;
pub mod protocol;
pub(crate) mod render;
pub(crate) mod reply;
pub(crate) mod shared;
pub(crate) mod socket;
pub(crate) mod tree_ops;
