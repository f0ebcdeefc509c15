//! The header read deadline of one connection (`http.header_read_timeout`),
//! kept without a timer per request.
//!
//! A client must send each request head within the timeout from the moment
//! the connection began waiting for it: the connection's opening, or the
//! end of the previous request. A head that has started but not finished
//! by then is a slow or stalled client (slowloris): the connection closes
//! and the refusal is counted (`header_timeout`). A connection on which
//! nothing came is an idle keep-alive one: it closes quietly. Neither gets
//! a response, as with hyper's own `header_read_timeout`.
//!
//! hyper can enforce this itself, but it arms a timer for every request
//! and drops it when the head arrives: two operations on tokio's timer
//! wheel per request, each taking the wheel's lock, which the runtime's
//! threads contend for — under load they spun and called `sched_yield`
//! hundreds of times a second (docs/benchmarks.md). Here the connection keeps its
//! state in one word — when the wait began, whether a byte of the head has
//! come, or that a request is being handled — written by the connection's
//! own task, and one timer per connection wakes only when the deadline
//! could have passed: once per timeout at most, not once per request.
//!
//! The pieces, all in the connection's task:
//! * [`Watched`] wraps the socket and marks the first bytes of an awaited
//!   head;
//! * the service calls [`HeadDeadline::request_started`] when hyper hands
//!   it a request and [`HeadDeadline::request_done`] when the response is
//!   ready;
//! * [`HeadDeadline::expired`] is raced against the connection, polled
//!   after it (so a head that has arrived is always seen first).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::config::LONGEST_WAIT;

/// The state word while a request is being handled.
const IN_REQUEST: u64 = u64::MAX;
/// The low bit of the state word: a byte of the awaited head has come.
const HEAD_STARTED: u64 = 1;

/// How a connection's wait for a request head ended at its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Part of a head came, not all of it: a slow or stalled client.
    Partial,
    /// Nothing came: an idle keep-alive connection.
    Idle,
}

/// When one connection began waiting for a request head, and whether any
/// of it has come.
#[derive(Debug)]
pub(crate) struct HeadDeadline {
    opened: Instant,
    timeout: Duration,
    /// [`IN_REQUEST`], or the nanoseconds from `opened` to the start of
    /// the wait shifted left by one, with [`HEAD_STARTED`] as the low bit.
    /// Written only by the connection's task (relaxed ordering suffices).
    state: AtomicU64,
}

impl HeadDeadline {
    /// A connection opened now, waiting for its first head.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            opened: Instant::now(),
            timeout: timeout.min(LONGEST_WAIT),
            state: AtomicU64::new(0),
        }
    }

    /// hyper has read a whole head and hands the request to the service:
    /// no deadline until it is done.
    pub(crate) fn request_started(&self) {
        self.state.store(IN_REQUEST, Ordering::Relaxed);
    }

    /// The response is ready at `at`: the wait for the next head begins.
    pub(crate) fn request_done(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.opened).as_nanos();
        // Shifted left by one below: keep the top bit clear (146 years).
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).min(u64::MAX >> 2);
        self.state.store(nanos << 1, Ordering::Relaxed);
    }

    /// Bytes came from the client: if a head is awaited, it has started.
    fn head_bytes(&self) {
        let state = self.state.load(Ordering::Relaxed);
        if state != IN_REQUEST && state & HEAD_STARTED == 0 {
            self.state.store(state | HEAD_STARTED, Ordering::Relaxed);
        }
    }

    /// Resolves once the awaited head is overdue; never while a request is
    /// being handled. Its timer fires at the deadline of the wait that was
    /// current when it was set; if a request came since, it is set again.
    pub(crate) async fn expired(&self) -> Expired {
        loop {
            let state = self.state.load(Ordering::Relaxed);
            let wake = if state == IN_REQUEST {
                // The earliest a wait beginning after this request can end.
                Instant::now() + self.timeout
            } else {
                // At most 146 years (request_done) plus a year (LONGEST_WAIT)
                // from `opened`: within the clock's range.
                let deadline = self.opened + Duration::from_nanos(state >> 1) + self.timeout;
                if Instant::now() < deadline {
                    deadline
                } else if state & HEAD_STARTED != 0 {
                    return Expired::Partial;
                } else {
                    return Expired::Idle;
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A connection's socket that tells its [`HeadDeadline`] when bytes come.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    stream: S,
    deadline: Arc<HeadDeadline>,
}

impl<S> Watched<S> {
    /// `stream`, reporting to `deadline`.
    pub(crate) fn new(stream: S, deadline: Arc<HeadDeadline>) -> Self {
        Self { stream, deadline }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.deadline.head_bytes();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const T: Duration = Duration::from_secs(5);

    /// Whether `expired` resolves within `within` (on the paused clock).
    async fn expires_within(d: &HeadDeadline, within: Duration) -> Option<Expired> {
        tokio::time::timeout(within, d.expired()).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_quietly_at_the_timeout() {
        let d = HeadDeadline::new(T);
        assert_eq!(expires_within(&d, T - Duration::from_millis(1)).await, None);
        assert_eq!(
            expires_within(&d, Duration::from_millis(2)).await,
            Some(Expired::Idle)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_head_expires_as_partial() {
        let d = Arc::new(HeadDeadline::new(T));
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = Watched::new(server, d.clone());
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0; 64];
        assert!(server.read(&mut buf).await.unwrap() > 0);
        assert_eq!(
            expires_within(&d, T + Duration::from_millis(1)).await,
            Some(Expired::Partial)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_never_expires_and_its_end_restarts_the_wait() {
        let d = HeadDeadline::new(T);
        d.head_bytes();
        d.request_started();
        // Bytes read during a request (a pipelined head) do not mark the wait.
        d.head_bytes();
        assert_eq!(expires_within(&d, 3 * T).await, None);
        d.request_done(Instant::now());
        assert_eq!(expires_within(&d, T - Duration::from_millis(1)).await, None);
        assert_eq!(
            expires_within(&d, Duration::from_millis(2)).await,
            Some(Expired::Idle)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_timeout_neither_overflows_nor_expires() {
        let d = HeadDeadline::new(Duration::MAX);
        assert_eq!(expires_within(&d, Duration::from_secs(3600)).await, None);
        d.request_started();
        assert_eq!(expires_within(&d, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_set_for_an_old_wait_is_set_again() {
        let d = HeadDeadline::new(T);
        let expired = d.expired();
        tokio::pin!(expired);
        // Its timer is set for the first wait's deadline, T from now.
        assert!(tokio::time::timeout(Duration::from_secs(1), &mut expired)
            .await
            .is_err());
        d.request_started();
        d.request_done(Instant::now());
        // The first deadline passes: a new wait began 1 s in, so 1 s more.
        assert!(tokio::time::timeout(T - Duration::from_millis(1), &mut expired)
            .await
            .is_err());
        let rest = tokio::time::timeout(Duration::from_secs(1) + Duration::from_millis(2), &mut expired);
        assert_eq!(rest.await.ok(), Some(Expired::Idle));
    }
}
