//! Every actor's load, live: what Erlang's etop and observer show per
//! process — the mailbox, the message rate, handler time, the handler
//! running now and whether it is stuck.
//!
//! The counters are the supervision tree's ([`supervisors::ActorLoad`]:
//! every actor a supervisor starts is counted, every message sent through
//! a [`supervisors::Counted`] handle); the sampler actor
//! ([`sampler`], `diem/load`) reads them, reports stuck handlers and long
//! mailboxes, and publishes rates ([`shared`]) and a five-minute history
//! ([`history`]) for `diem ctl top`, `diem ctl diagnose`, the observer page
//! and the metrics.

pub mod diagnose;
pub mod history;
pub(crate) mod sampler;
pub mod shared;
