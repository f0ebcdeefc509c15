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
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::{mpsc, Semaphore};

    use super::*;

    /// Longer than any test needs: a hang fails the test instead of
    /// blocking the suite.
    const LIMIT: Duration = Duration::from_secs(10);

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: diem\r\n\r\n";

    /// A served connection whose handler reports each request on `entered`
    /// and answers it once `gate` has a permit.
    fn connection(
        io: DuplexStream,
        entered: mpsc::UnboundedSender<()>,
        gate: Arc<Semaphore>,
    ) -> impl GracefulConnection<Output = Result<(), hyper::Error>> {
        let service = hyper::service::service_fn(move |_req| {
            let (entered, gate) = (entered.clone(), gate.clone());
            async move {
                let _ = entered.send(());
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        });
        http1::Builder::new().serve_connection(TokioIo::new(io), service)
    }

    /// Serves `conn` under `drain` in a task of its own.
    fn watched<C>(drain: &Arc<Drain>, conn: C) -> tokio::task::JoinHandle<C::Output>
    where
        C: GracefulConnection + Send + 'static,
        C::Output: Send,
    {
        let drain = drain.clone();
        tokio::spawn(async move { drain.watch(conn).await })
    }

    /// Everything the server sends until it closes.
    async fn read_to_close(client: &mut DuplexStream) -> String {
        let mut seen = Vec::new();
        tokio::time::timeout(LIMIT, client.read_to_end(&mut seen))
            .await
            .expect("the server closed the connection")
            .expect("read");
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[tokio::test]
    async fn an_idle_connection_closes_when_draining_begins() {
        let drain = Arc::new(Drain::default());
        let (mut client, server) = tokio::io::duplex(1024);
        let (entered, _) = mpsc::unbounded_channel();
        let conn = connection(server, entered, Arc::new(Semaphore::new(0)));
        let served = watched(&drain, conn);
        while drain.live() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::timeout(LIMIT, drain.drain()).await.expect("drained");
        assert_eq!(drain.live(), 0);
        assert_eq!(read_to_close(&mut client).await, "");
        assert!(served.await.expect("no panic").is_ok());
    }

    #[tokio::test]
    async fn a_request_in_flight_is_answered_then_the_connection_closes() {
        let drain = Arc::new(Drain::default());
        let (mut client, server) = tokio::io::duplex(1024);
        let (entered, mut entries) = mpsc::unbounded_channel();
        let gate = Arc::new(Semaphore::new(0));
        let conn = connection(server, entered, gate.clone());
        watched(&drain, conn);
        client.write_all(GET).await.expect("write");
        tokio::time::timeout(LIMIT, entries.recv())
            .await
            .expect("the request reached the handler");

        let drained = tokio::spawn({
            let drain = drain.clone();
            async move { drain.drain().await }
        });
        // The request is still in flight: the drain waits for it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!drained.is_finished());
        assert_eq!(drain.live(), 1);

        gate.add_permits(1);
        let answer = read_to_close(&mut client).await.to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 200 ok"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        tokio::time::timeout(LIMIT, drained)
            .await
            .expect("drained")
            .expect("no panic");
        assert_eq!(drain.live(), 0);
    }

    #[tokio::test]
    async fn a_connection_polled_by_another_task_is_still_woken() {
        let drain = Arc::new(Drain::default());
        let (mut client, server) = tokio::io::duplex(1024);
        let (entered, _) = mpsc::unbounded_channel();
        let conn = connection(server, entered, Arc::new(Semaphore::new(0)));
        let mut served = Box::pin({
            let drain = drain.clone();
            async move { drain.watch(conn).await }
        });
        // First polled with a waker that wakes nothing, then moved to a
        // task: the connection must register the task's waker.
        let mut cx = std::task::Context::from_waker(Waker::noop());
        assert!(served.as_mut().poll(&mut cx).is_pending());
        assert_eq!(drain.live(), 1);
        let served = tokio::spawn(served);
        tokio::task::yield_now().await;
        tokio::time::timeout(LIMIT, drain.drain()).await.expect("drained");
        assert_eq!(read_to_close(&mut client).await, "");
        assert!(served.await.expect("no panic").is_ok());
    }

    #[tokio::test]
    async fn a_connection_arriving_while_draining_is_served_unwatched() {
        let drain = Arc::new(Drain::default());
        tokio::time::timeout(LIMIT, drain.drain())
            .await
            .expect("nothing to drain");
        let (mut client, server) = tokio::io::duplex(1024);
        let (entered, _) = mpsc::unbounded_channel();
        let conn = connection(server, entered, Arc::new(Semaphore::new(1)));
        watched(&drain, conn);
        client.write_all(GET).await.expect("write");
        let mut head = [0; 256];
        let n = tokio::time::timeout(LIMIT, client.read(&mut head))
            .await
            .expect("answered")
            .expect("read");
        let answer = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 200 ok"), "{answer}");
        // Not asked to close: the request was read and answered, and the
        // connection stays open for the next.
        assert!(!answer.contains("connection: close"), "{answer}");
        assert_eq!(drain.live(), 0);
    }
}
