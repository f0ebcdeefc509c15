//! The worker pool as connections see it: who the live workers are, how
//! many requests may be in flight, and how a request reaches a worker.
//!
//! Workers register themselves when they start and are removed when their
//! state is dropped (any exit: stop, crash, kill), so the registry is always
//! the set of workers that can take a message. It is an atomically swapped
//! list: a dispatch is one load, one round-robin counter increment and one
//! message send, with no lock.
//!
//! The number of workers wanted is the pool supervisor's [`PoolSize`],
//! held here so that readiness and metrics read it without a message; only
//! the supervisor changes it (`scale_to`), and a restarted pool starts that
//! many.
//!
//! Admission is bounded: at most `count × queue_depth` requests are in
//! flight; beyond that [`WorkerPool::admit`] refuses at once and the
//! connection answers 503 with `Retry-After`, so an overload costs memory
//! bounded by the limit and latency bounded for the requests admitted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::{ActorId, ActorRef, MessagingErr};
use supervisors::PoolSize;
use tokio::sync::{oneshot, Notify};

use crate::api::request::{HttpResponse, Request};
use crate::workers::job::{Job, Outcome, WorkerMsg};

/// Longest a request waits for the pool to have a worker at all (while
/// the whole pool restarts).
const EMPTY_POOL_WAIT: Duration = Duration::from_secs(2);
/// Deliveries of one request before giving up (each failed delivery means
/// the chosen worker stopped before handling it).
const ATTEMPTS: usize = 16;

/// Why a request got no response from a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The handler crashed (panic) or its worker was killed while handling it.
    #[error("the worker handling the request crashed")]
    Crashed,
    /// No worker could take the request.
    #[error("no worker is available")]
    Unavailable,
}

/// Round robin per thread: no counter shared between cores.
fn next_index(len: usize) -> usize {
    thread_local! {
        static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    NEXT.with(|n| {
        let i = n.get().wrapping_add(1);
        n.set(i);
        i % len
    })
}

/// The registry and the admission bound of the worker pool.
#[derive(Debug)]
pub struct WorkerPool {
    workers: ArcSwap<Vec<ActorRef<WorkerMsg>>>,
    /// `workers`' length, stored with it: admission reads this word
    /// instead of loading the list (one `ArcSwap` load less per request).
    live: AtomicUsize,
    update: Mutex<()>,
    changed: Notify,
    in_flight: AtomicUsize,
    queue_depth: AtomicUsize,
    target: PoolSize,
}

/// An admitted request; dropping it frees its slot.
#[derive(Debug)]
pub struct Admission<'a> {
    pool: &'a WorkerPool,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkerPool {
    /// An empty pool wanting `count` workers and admitting `queue_depth`
    /// requests per worker.
    pub fn new(count: usize, queue_depth: usize) -> Self {
        Self {
            workers: ArcSwap::from_pointee(Vec::new()),
            live: AtomicUsize::new(0),
            update: Mutex::new(()),
            changed: Notify::new(),
            in_flight: AtomicUsize::new(0),
            queue_depth: AtomicUsize::new(queue_depth.max(1)),
            target: PoolSize::new(count),
        }
    }

    /// The pool supervisor's size: workers wanted.
    pub fn target(&self) -> &PoolSize {
        &self.target
    }

    /// Adds a started worker.
    pub fn register(&self, worker: ActorRef<WorkerMsg>) {
        let _guard = self.update.lock();
        let mut next = Vec::clone(&self.workers.load());
        next.push(worker);
        self.live.store(next.len(), Ordering::Release);
        self.workers.store(Arc::new(next));
        self.changed.notify_waiters();
    }

    /// Removes a worker that is stopping or gone.
    pub fn unregister(&self, id: ActorId) {
        let _guard = self.update.lock();
        let current = self.workers.load();
        if current.iter().any(|w| w.get_id() == id) {
            let next: Vec<_> = current.iter().filter(|w| w.get_id() != id).cloned().collect();
            self.live.store(next.len(), Ordering::Release);
            self.workers.store(Arc::new(next));
        }
    }

    /// Live workers.
    pub fn size(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The admission bound now: live workers × queue depth.
    pub fn capacity(&self) -> usize {
        self.size().max(1) * self.queue_depth.load(Ordering::Relaxed)
    }

    /// Changes the per-worker queue depth (live reload).
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth.max(1), Ordering::Relaxed);
    }

    /// Admits a request if the pool has room.
    pub fn admit(&self) -> Option<Admission<'_>> {
        let capacity = self.capacity();
        let prev = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission { pool: self };
        (prev < capacity).then_some(admission)
    }

    async fn wait_for_workers(&self) -> Option<Arc<Vec<ActorRef<WorkerMsg>>>> {
        let deadline = tokio::time::Instant::now() + EMPTY_POOL_WAIT;
        loop {
            let notified = self.changed.notified();
            let workers = self.workers.load_full();
            if !workers.is_empty() {
                return Some(workers);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Whether a worker answers a ping (through its mailbox, behind the
    /// requests queued there) within `within`.
    pub async fn ping(&self, within: Duration) -> bool {
        let worker = {
            let workers = self.workers.load();
            if workers.is_empty() {
                return false;
            }
            workers[next_index(workers.len())].clone()
        };
        let (tx, rx) = oneshot::channel();
        if worker.send_message(WorkerMsg::Ping(tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(within, rx).await, Ok(Ok(())))
    }

    /// Hands `request` to a worker and waits for its response. A request
    /// that no handler saw (its worker stopped first) is given to another.
    pub async fn dispatch(&self, request: Request) -> Result<HttpResponse, DispatchError> {
        let mut request = request;
        for _ in 0..ATTEMPTS {
            let (tx, rx) = oneshot::channel();
            // The guard is dropped before waiting: no reference count is
            // taken on the shared list on this path.
            let sent = {
                let workers = self.workers.load();
                if workers.is_empty() {
                    Err((request, None))
                } else {
                    let worker = &workers[next_index(workers.len())];
                    match worker.send_message(WorkerMsg::Job(Job::new(request, tx))) {
                        Ok(()) => Ok(()),
                        Err(MessagingErr::SendErr(WorkerMsg::Job(job))) => match job.into_request() {
                            Some(back) => Err((back, Some(worker.get_id()))),
                            None => return Err(DispatchError::Unavailable),
                        },
                        Err(_) => return Err(DispatchError::Unavailable),
                    }
                }
            };
            match sent {
                Ok(()) => match rx.await {
                    Ok(Outcome::Done(response)) => return Ok(response),
                    Ok(Outcome::Retry(back)) => request = back,
                    Ok(Outcome::Crashed) | Err(_) => return Err(DispatchError::Crashed),
                },
                Err((back, stopped)) => {
                    match stopped {
                        Some(id) => self.unregister(id),
                        // No worker at all (the whole pool restarting).
                        // Boxed: the wait holds a timer, and every
                        // request's future would otherwise be that large.
                        None => {
                            Box::pin(self.wait_for_workers())
                                .await
                                .ok_or(DispatchError::Unavailable)?;
                        }
                    }
                    request = back;
                }
            }
        }
        Err(DispatchError::Unavailable)
    }
}
