//! Unit tests of [`drain`](super).

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
