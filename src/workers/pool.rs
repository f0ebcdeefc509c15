//! The worker pool as connections see it: who the live workers are, how
//! many requests may be in flight, and how a request reaches a worker.
//!
//! Workers register themselves when they start and are removed when their
//! state is dropped (any exit: stop, crash, kill), so the registry is always
//! the set of workers that can take a message. It is an atomically swapped
//! list of the workers' counting handles ([`supervisors::Counted`]): a
//! dispatch is one load, one round-robin step, a look at that worker's
//! backlog — the jobs sent to it and not yet handled, from its load
//! counters (at the others' only when it is busy) — and one counted send,
//! with no lock; the tree counts the job handled when its handler returns.
//!
//! A worker runs one job at a time, so a job sent to a busy worker waits
//! for the one it is running. The next worker in turn takes the job if its
//! backlog is empty; if not, the first idle worker after it does, and if
//! none is idle, the one with the smallest backlog ([`pick`]). Without
//! that, one slow job — a write waiting a second on a PostgreSQL commit —
//! held every read: round robin kept queueing reads behind it until every
//! client's request was one of them (measured: a write held 1.5 s in
//! PostgreSQL stopped all answers of the node for 1.5 s). OTP pools
//! (poolboy) likewise hand work to a free worker, not to the next one.
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
use ractor::{ActorId, MessagingErr};
use supervisors::{Counted, PoolSize};
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

/// A request no worker answered: why, and the request itself when it is
/// still at hand (to shape the error as its client asked).
#[derive(Debug, thiserror::Error)]
#[error("{why}")]
pub struct Unanswered {
    /// Why.
    pub why: DispatchError,
    /// The request, unless it was lost with the worker.
    pub request: Option<Request>,
}

impl Unanswered {
    fn new(why: DispatchError, request: Option<Request>) -> Self {
        Self { why, request }
    }
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

/// Which of `len` workers gets the next job, looking from `start` (the
/// round robin's turn): `start` if its backlog is empty, else the first
/// idle worker after it, else the one with the smallest backlog (the first
/// after `start` among equals).
///
/// # Panics
///
/// If `len` is 0 (there is no worker to pick).
///
/// ```
/// use diem::workers::pool::pick;
///
/// let backlogs = [1, 3, 0, 0];
/// assert_eq!(pick(4, 2, |i| backlogs[i]), 2, "the next in turn is idle");
/// assert_eq!(pick(4, 0, |i| backlogs[i]), 2, "worker 0 is busy: the first idle after it");
///
/// let busy = [2, 3, 1, 1];
/// assert_eq!(pick(4, 0, |i| busy[i]), 2, "none idle: the smallest backlog, first in turn");
/// assert_eq!(pick(4, 3, |i| busy[i]), 3);
/// ```
pub fn pick(len: usize, start: usize, backlog: impl Fn(usize) -> usize) -> usize {
    let mut best = (start % len, backlog(start % len));
    let mut i = best.0;
    for _ in 1..len {
        if best.1 == 0 {
            break;
        }
        i = if i + 1 == len { 0 } else { i + 1 };
        let b = backlog(i);
        if b < best.1 {
            best = (i, b);
        }
    }
    best.0
}

/// A live worker: its counting handle, whose load says how many jobs it
/// holds (sent and not yet handled, the running one included). A hint,
/// not an invariant: two dispatches at one instant may both see the same
/// idle worker, and one waits for the other's job.
#[derive(Debug, Clone)]
struct Entry {
    worker: Counted<WorkerMsg>,
}

impl Entry {
    /// Jobs the worker holds (0 for a worker a supervisor did not start:
    /// its messages are not counted).
    fn backlog(&self) -> usize {
        self.worker
            .load()
            .map_or(0, |l| usize::try_from(l.held()).unwrap_or(usize::MAX))
    }
}

/// The worker that gets the next job ([`pick`]); `workers` must not be
/// empty.
fn choose(workers: &[Entry]) -> &Entry {
    &workers[pick(workers.len(), next_index(workers.len()), |i| workers[i].backlog())]
}

/// The registry and the admission bound of the worker pool.
#[derive(Debug)]
pub struct WorkerPool {
    workers: ArcSwap<Vec<Entry>>,
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
    pub fn register(&self, worker: Counted<WorkerMsg>) {
        let _guard = self.update.lock();
        let mut next = Vec::clone(&self.workers.load());
        next.push(Entry { worker });
        self.live.store(next.len(), Ordering::Release);
        self.workers.store(Arc::new(next));
        self.changed.notify_waiters();
    }

    /// Removes a worker that is stopping or gone.
    pub fn unregister(&self, id: ActorId) {
        let _guard = self.update.lock();
        let current = self.workers.load();
        if current.iter().any(|e| e.worker.actor().get_id() == id) {
            let next: Vec<_> = current
                .iter()
                .filter(|e| e.worker.actor().get_id() != id)
                .cloned()
                .collect();
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

    async fn wait_for_workers(&self) -> Option<Arc<Vec<Entry>>> {
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
    /// requests queued there) within `within`; the worker is the one the
    /// next request would get.
    pub async fn ping(&self, within: Duration) -> bool {
        let worker = {
            let workers = self.workers.load();
            if workers.is_empty() {
                return false;
            }
            choose(&workers).worker.clone()
        };
        let (tx, rx) = oneshot::channel();
        if worker.send(WorkerMsg::Ping(tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(within, rx).await, Ok(Ok(())))
    }

    /// Hands `request` to a worker and waits for its response. A request
    /// that no handler saw (its worker stopped first) is given to another.
    pub async fn dispatch(&self, request: Request) -> Result<HttpResponse, Unanswered> {
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
                    let worker = &choose(&workers).worker;
                    match worker.send(WorkerMsg::Job(Job::new(request, tx))) {
                        Ok(()) => Ok(()),
                        Err(MessagingErr::SendErr(WorkerMsg::Job(job))) => match job.into_request() {
                            Some(back) => Err((back, Some(worker.actor().get_id()))),
                            None => return Err(Unanswered::new(DispatchError::Unavailable, None)),
                        },
                        Err(_) => return Err(Unanswered::new(DispatchError::Unavailable, None)),
                    }
                }
            };
            match sent {
                Ok(()) => match rx.await {
                    Ok(Outcome::Done(response)) => return Ok(response),
                    Ok(Outcome::Retry(back)) => request = back,
                    Ok(Outcome::Crashed(request)) => {
                        return Err(Unanswered::new(DispatchError::Crashed, Some(request)))
                    }
                    Err(_) => return Err(Unanswered::new(DispatchError::Crashed, None)),
                },
                Err((back, stopped)) => {
                    match stopped {
                        Some(id) => self.unregister(id),
                        // No worker at all (the whole pool restarting).
                        // Boxed: the wait holds a timer, and every
                        // request's future would otherwise be that large.
                        None => {
                            if Box::pin(self.wait_for_workers()).await.is_none() {
                                return Err(Unanswered::new(DispatchError::Unavailable, Some(back)));
                            }
                        }
                    }
                    request = back;
                }
            }
        }
        Err(Unanswered::new(DispatchError::Unavailable, Some(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    proptest::proptest! {
        /// The pick never has a larger backlog than any worker; it is the
        /// worker in turn when that one is idle, and otherwise the first
        /// after it with the smallest backlog.
        #[test]
        fn the_pick_is_the_least_busy_first_in_turn(
            backlogs in proptest::collection::vec(0usize..4, 1..12),
            start in 0usize..64,
        ) {
            let len = backlogs.len();
            let chosen = pick(len, start, |i| backlogs[i]);
            let least = *backlogs.iter().min().unwrap_or(&0);
            proptest::prop_assert_eq!(backlogs[chosen], least);
            let first = (0..len).map(|k| (start + k) % len).find(|&i| backlogs[i] == least);
            proptest::prop_assert_eq!(Some(chosen), first);
        }
    }
}
