//! Per-actor load counters: what Erlang's `process_info` and etop show of a
//! process — its mailbox, the messages it handled, how long its handlers
//! ran and the one running now — kept for every actor a supervisor starts.
//!
//! The counters are atomics written on the message path without a lock:
//! the sending side counts a message sent through a [`Counted`] handle,
//! the actor's side (the wrapper [`StartCtx::spawn`] puts around every
//! child) counts it taken from the mailbox and handled, and keeps its
//! kind. ractor exposes no queue length, so the mailbox is what was sent
//! through counted handles minus what was taken: a message sent past them
//! (a raw `ActorRef`) is not seen until it is taken, and the figure is
//! clamped at 0.
//!
//! Two costs are kept off the message path (the clock's two reads per
//! message and their arithmetic were half of the counters' instructions
//! per request):
//!
//! * **handler time** is measured for one message in four (chosen by a
//!   hash of its number, so that no periodic pattern of kinds is missed)
//!   into a histogram of power-of-two buckets of µs: its quantiles are
//!   those of a uniform sample;
//! * **the running handler's time** is not stamped by the actor: a watcher
//!   (a sampler calling [`ActorLoad::observe`] every few ms) notes when it
//!   first saw the current message running, and the time counts from
//!   there — short by at most one of the watcher's periods. A handler the
//!   watcher saw running long counts in the maximum, timed or not.
//!
//! [`Counted`]: crate::Counted
//! [`StartCtx::spawn`]: crate::StartCtx::spawn
//!
//! ```
//! use std::time::{Duration, Instant};
//! use supervisors::ActorLoad;
//!
//! let load = ActorLoad::new("app/worker".into());
//! load.sent();
//! load.sent();
//! let running = load.begin(0);
//! assert_eq!(load.sample().mailbox, 1);
//! // The watcher sees it running, and later for how long.
//! let seen = Instant::now();
//! assert_eq!(load.observe(seen).map(|(busy, _, _)| busy), Some(Duration::ZERO));
//! let later = seen + Duration::from_millis(30);
//! assert!(load.observe(later).unwrap().0 >= Duration::from_millis(30));
//! drop(running); // the handler returned (or panicked, or was killed)
//! let s = load.sample();
//! assert_eq!((s.taken, s.handled, s.mailbox, s.mailbox_max), (1, 1, 1, 2));
//! assert!(s.busy.is_none() && s.handle_max_us >= 30_000);
//! assert!(load.observe(Instant::now()).is_none());
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Buckets of the handler-time histogram: bucket `b` counts handlers that
/// ran less than `2^b` µs (and at least `2^(b-1)`); the last one, longer.
pub const BUCKETS: usize = 32;

/// The process's clock origin: the watcher's marks and the timed
/// handlers' starts are µs since it.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// µs from [`epoch`] to `at` (0 before it).
fn micros_since_epoch(at: Instant) -> u64 {
    micros(at.saturating_duration_since(epoch()))
}

/// A duration in µs, in u64 arithmetic (`as_micros` is u128).
fn micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

/// Whether message number `n` is one of the one in four timed: the top
/// two bits of a multiplicative hash of its number are 0.
fn timed(n: u64) -> bool {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 62 == 0
}

/// The counters of one actor incarnation. The senders', the actor's and
/// the watcher's are on cache lines of their own: written from different
/// threads, they would otherwise take the line from each other at every
/// message.
#[derive(Debug)]
pub struct ActorLoad {
    path: Arc<str>,
    senders: Senders,
    actor: ActorSide,
    watch: Watch,
}

/// What the senders write: one atomic add per message, the only locked
/// instruction a message costs.
#[derive(Debug)]
#[repr(align(64))]
struct Senders {
    sent: AtomicU64,
}

/// What the actor writes. Its handlers run one at a time, so each counter
/// here has one writer, and is written with a plain load and store, not
/// a locked read-modify-write (the watcher only reads them; the mailbox's
/// maximum, which the watcher also resets, is the one exception).
#[derive(Debug)]
#[repr(align(64))]
struct ActorSide {
    taken: AtomicU64,
    handled: AtomicU64,
    /// The longest mailbox a handler found when it began (the mailbox is
    /// longest just before a message is taken: that and the length now
    /// give the maximum).
    mailbox_max: AtomicU64,
    /// The running (or last) message's kind ([`kind_name`](crate::kind_name)).
    kind: AtomicU32,
    handle_max_us: AtomicU64,
    /// When the running message began, µs since [`epoch`], if it is timed.
    began_us: AtomicU64,
    histogram: [AtomicU64; BUCKETS],
}

/// What the watcher writes ([`ActorLoad::observe`]).
#[derive(Debug)]
#[repr(align(64))]
struct Watch {
    /// The number (`taken`) of the message last seen running.
    number: AtomicU64,
    /// µs since [`epoch`] when it was first seen.
    since: AtomicU64,
    /// The longest a handler was seen running, µs.
    longest: AtomicU64,
}

/// What [`ActorLoad::sample`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSample {
    /// Messages sent through counted handles.
    pub sent: u64,
    /// Messages taken from the mailbox (handlers begun).
    pub taken: u64,
    /// Handlers finished (returned, failed, or cut off by a kill).
    pub handled: u64,
    /// Messages waiting now (`sent − taken`, at least 0).
    pub mailbox: u64,
    /// The longest the mailbox was since the last [`ActorLoad::reset_max`].
    pub mailbox_max: u64,
    /// How long the running handler has run, if one runs (from when the
    /// watcher first saw it: 0 until it has).
    pub busy: Option<Duration>,
    /// The kind of the running (or last) message.
    pub kind: u32,
    /// Handler times of the timed messages (one in four; [`BUCKETS`]).
    pub histogram: [u64; BUCKETS],
    /// The longest handler so far, µs: timed, or seen running by the
    /// watcher.
    pub handle_max_us: u64,
}

impl ActorLoad {
    /// Counters for the actor at `path`, all 0.
    pub fn new(path: Arc<str>) -> Self {
        // The clock's origin is set before any mark can be taken.
        let _ = epoch();
        Self {
            path,
            senders: Senders {
                sent: AtomicU64::new(0),
            },
            actor: ActorSide {
                taken: AtomicU64::new(0),
                handled: AtomicU64::new(0),
                mailbox_max: AtomicU64::new(0),
                kind: AtomicU32::new(0),
                handle_max_us: AtomicU64::new(0),
                began_us: AtomicU64::new(0),
                histogram: std::array::from_fn(|_| AtomicU64::new(0)),
            },
            watch: Watch {
                number: AtomicU64::new(u64::MAX),
                since: AtomicU64::new(0),
                longest: AtomicU64::new(0),
            },
        }
    }

    /// The actor's path in the tree.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Counts a message sent (the sender's side).
    #[inline]
    pub fn sent(&self) {
        self.senders.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back a message counted by [`sent`](Self::sent) that the
    /// mailbox refused (the actor stopped).
    #[inline]
    pub fn unsent(&self) {
        self.senders.sent.fetch_sub(1, Ordering::Relaxed);
    }

    /// Messages sent and not yet handled, the running one included (a
    /// pool's pick of the least loaded worker).
    #[inline]
    pub fn held(&self) -> u64 {
        self.senders
            .sent
            .load(Ordering::Relaxed)
            .saturating_sub(self.actor.handled.load(Ordering::Relaxed))
    }

    /// Messages waiting now (`sent − taken`, at least 0).
    pub fn mailbox(&self) -> u64 {
        self.senders
            .sent
            .load(Ordering::Relaxed)
            .saturating_sub(self.actor.taken.load(Ordering::Relaxed))
    }

    /// The running handler, if one runs: its message's kind and number
    /// (the count of messages taken, the same while one handler runs).
    pub fn running(&self) -> Option<(u32, u64)> {
        let a = &self.actor;
        let taken = a.taken.load(Ordering::Acquire);
        (taken > a.handled.load(Ordering::Acquire)).then(|| (a.kind.load(Ordering::Relaxed), taken))
    }

    /// The watcher's look at `now`: the running handler, if one runs, with
    /// how long it has run since the watcher first saw it (0 at that
    /// first look), its kind and its number. Called every few ms by one
    /// watcher (diem's load sampler).
    pub fn observe(&self, now: Instant) -> Option<(Duration, u32, u64)> {
        let (kind, number) = self.running()?;
        let w = &self.watch;
        let now_us = micros_since_epoch(now);
        if w.number.load(Ordering::Relaxed) != number {
            w.since.store(now_us, Ordering::Relaxed);
            w.number.store(number, Ordering::Relaxed);
            return Some((Duration::ZERO, kind, number));
        }
        let busy = now_us.saturating_sub(w.since.load(Ordering::Relaxed));
        if busy > w.longest.load(Ordering::Relaxed) {
            w.longest.fetch_max(busy, Ordering::Relaxed);
        }
        Some((Duration::from_micros(busy), kind, number))
    }

    /// The running handler's time at `now` (from when the watcher first
    /// saw it; 0 if it has not yet) and its kind, noting nothing: for
    /// readers other than the watcher.
    pub fn busy(&self, now: Instant) -> Option<(Duration, u32)> {
        let (kind, number) = self.running()?;
        let w = &self.watch;
        let busy = if w.number.load(Ordering::Relaxed) == number {
            micros_since_epoch(now).saturating_sub(w.since.load(Ordering::Relaxed))
        } else {
            0
        };
        Some((Duration::from_micros(busy), kind))
    }

    /// A handler of a message of `kind` begins: the actor is busy until
    /// the returned guard is dropped (the handler returned, panicked, or
    /// its future was dropped by a kill). One message in four is timed.
    #[inline]
    pub fn begin(&self, kind: u32) -> Running<'_> {
        let a = &self.actor;
        a.kind.store(kind, Ordering::Relaxed);
        let n = a.taken.load(Ordering::Relaxed);
        a.taken.store(n + 1, Ordering::Release);
        // The mailbox as this message leaves it, this one included.
        let waiting = self.senders.sent.load(Ordering::Relaxed).saturating_sub(n);
        if waiting > a.mailbox_max.load(Ordering::Relaxed) {
            a.mailbox_max.fetch_max(waiting, Ordering::Relaxed);
        }
        if timed(n) {
            self.timed_begin();
        }
        // One pointer: it travels inside every handler's future.
        Running { load: self }
    }

    /// Notes when the message beginning, a timed one, began.
    #[inline(never)]
    fn timed_begin(&self) {
        self.actor
            .began_us
            .store(micros_since_epoch(Instant::now()), Ordering::Relaxed);
    }

    /// Reads the counters (each atomically, not all at one instant).
    pub fn sample(&self) -> LoadSample {
        let a = &self.actor;
        let sent = self.senders.sent.load(Ordering::Relaxed);
        let taken = a.taken.load(Ordering::Relaxed);
        LoadSample {
            sent,
            taken,
            handled: a.handled.load(Ordering::Relaxed),
            mailbox: sent.saturating_sub(taken),
            mailbox_max: a
                .mailbox_max
                .load(Ordering::Relaxed)
                .max(sent.saturating_sub(taken)),
            busy: self.busy(Instant::now()).map(|(d, _)| d),
            kind: a.kind.load(Ordering::Relaxed),
            histogram: std::array::from_fn(|b| a.histogram[b].load(Ordering::Relaxed)),
            handle_max_us: a
                .handle_max_us
                .load(Ordering::Relaxed)
                .max(self.watch.longest.load(Ordering::Relaxed)),
        }
    }

    /// Starts a new interval for the mailbox's maximum: from now on it is
    /// the longest since this call.
    pub fn reset_max(&self) {
        self.actor.mailbox_max.store(self.mailbox(), Ordering::Relaxed);
    }
}

/// A running handler ([`ActorLoad::begin`]); ends it when dropped, timing
/// it if it is one of the timed.
#[derive(Debug)]
pub struct Running<'a> {
    load: &'a ActorLoad,
}

impl Drop for Running<'_> {
    #[inline]
    fn drop(&mut self) {
        let a = &self.load.actor;
        // One writer (the actor): plain loads and stores. Handlers run one
        // at a time, so the message ending is number `handled`.
        let n = a.handled.load(Ordering::Relaxed);
        a.handled.store(n + 1, Ordering::Release);
        if timed(n) {
            self.load.timed_end();
        }
    }
}

impl ActorLoad {
    /// Ends the timing of the message ending, a timed one: its time goes
    /// into the histogram and the maximum. Out of line: three messages in
    /// four do not come here.
    #[inline(never)]
    fn timed_end(&self) {
        let a = &self.actor;
        let us = micros_since_epoch(Instant::now()).saturating_sub(a.began_us.load(Ordering::Relaxed));
        let slot = &a.histogram[bucket(us)];
        slot.store(slot.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if us > a.handle_max_us.load(Ordering::Relaxed) {
            a.handle_max_us.store(us, Ordering::Relaxed);
        }
    }
}

/// The histogram bucket of a handler that ran `us` µs.
fn bucket(us: u64) -> usize {
    let b = (u64::BITS - us.leading_zeros()) as usize;
    b.min(BUCKETS - 1)
}

/// The upper bound (µs) of the histogram bucket that holds the `q`
/// quantile (0 < q ≤ 1) of `histogram` (counts per bucket, e.g. the
/// difference of two samples' histograms); `None` if it is empty.
///
/// ```
/// use supervisors::{quantile_us, BUCKETS};
///
/// let mut h = [0u64; BUCKETS];
/// h[3] = 98; // 98 handlers of 4–7 µs
/// h[10] = 2; // 2 of 512–1023 µs
/// assert_eq!(quantile_us(&h, 0.5), Some(8));
/// assert_eq!(quantile_us(&h, 0.99), Some(1024));
/// assert_eq!(quantile_us(&[0; BUCKETS], 0.99), None);
/// ```
pub fn quantile_us(histogram: &[u64; BUCKETS], q: f64) -> Option<u64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the quantile, 1-based, rounded up.
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, &n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(1u64 << b.min(63));
        }
    }
    Some(1u64 << (BUCKETS - 1))
}

#[cfg(test)]
mod tests;
