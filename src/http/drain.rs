//! Draining the connections: on shutdown (or at the end of an upgrade) each
//! open connection is asked to finish the request it is serving and close,
//! and the node waits until they all have.
//!
//! This is what hyper-util's `GracefulShutdown` does, with one difference
//! that matters on the hot path: its watcher polls a `tokio::sync::watch`
//! change notification every time the connection's task wakes — once or
//! twice per request — and each such poll takes the lock of a
//! `tokio::sync::Notify` that the connections of both cores share. Here a
//! connection registers its wake-up once, with its task's waker, and
//! afterwards reads one atomic flag per wake; it registers again only if
//! it is polled with another waker. Under callgrind that took 473
//! instructions off each request with the limiter off (16,906 → 16,433,
//! docs/benchmarks.md).
//!
//! * [`Drain::watch`] serves one connection under the drain.
//! * [`Drain::drain`] asks every watched connection to close gracefully
//!   (`graceful_shutdown`: hyper finishes the request in flight, answers
//!   it, and closes instead of keeping the connection alive) and waits
//!   until the last one has closed.
//!
//! A connection that arrives once draining has begun is served unwatched
//! and not waited for, as with hyper-util's: closing it before reading
//! would drop a request the client has already sent.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Waker;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;

/// The connections of one node and whether they are being drained.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    /// Set once, when draining begins.
    draining: AtomicBool,
    /// Wakes every watched connection when draining begins.
    begun: Notify,
    /// Watched connections still open.
    live: AtomicUsize,
    /// Wakes [`Drain::drain`] when the last watched connection closes.
    closed: Notify,
}

impl Drain {
    /// Serves `conn` to its end. Unless draining has begun already (then
    /// it is served unwatched), it is watched: asked to close gracefully
    /// as soon as draining begins, and waited for by [`Drain::drain`].
    pub(crate) async fn watch<C: GracefulConnection>(&self, conn: C) -> C::Output {
        // In this order: counted, then the wake-up created, then the flag
        // read. `drain` sets the flag, then wakes, then reads the count,
        // so a connection that sees no flag is both woken and waited for.
        self.live.fetch_add(1, Ordering::SeqCst);
        let live = Live(self);
        let mut begun = pin!(self.begun.notified());
        let mut conn = pin!(conn);
        if self.draining.load(Ordering::SeqCst) {
            drop(live);
            return conn.await;
        }
        let mut registered: Option<Waker> = None;
        let mut asked = false;
        let output = poll_fn(|cx| {
            if !asked {
                let woken = if self.draining.load(Ordering::Acquire) {
                    true
                } else if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    false
                } else {
                    registered = Some(cx.waker().clone());
                    begun.as_mut().poll(cx).is_ready()
                };
                if woken {
                    asked = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            conn.as_mut().poll(cx)
        })
        .await;
        drop(live);
        output
    }

    /// Asks every watched connection to close once its request in flight
    /// is answered, and waits until all have closed. Connections arriving
    /// from now on are served unwatched.
    pub(crate) async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.begun.notify_waiters();
        loop {
            let closed = self.closed.notified();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            closed.await;
        }
    }

    /// Watched connections open now.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// One watched connection, counted until it drops.
struct Live<'a>(&'a Drain);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests;
