//! The request workers: a dynamic pool of actors (`diem/workers/N`) that
//! run the API handlers.
//!
//! * [`worker`]: the worker actor.
//! * [`pool`]: the registry, admission bound and dispatch.
//! * [`job`]: a request in flight and what a crash makes of it.

pub(crate) mod job;
pub mod pool;
pub mod worker;
