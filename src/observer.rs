//! The observer: a live web page of the running tree, pushed on every
//! event (served by the admin listener, [`admin`](crate::admin)).
//!
//! * [`shared`]: what it publishes — the viewers, the frames broadcast to
//!   them, the event log and the plot history.
//! * [`publisher`]: the actor (`diem/observer`) that builds the frames,
//!   only while someone watches, at most 10 a second.
//! * [`frames`]: what each frame holds.
//!
//! docs/observer.md shows the page and gives its cost.

pub(crate) mod frames;
pub(crate) mod publisher;
pub(crate) mod shared;
