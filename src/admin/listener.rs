//! The admin listener (`diem/admin`): binds `admin.addr` and serves
//! the observer ([`routes`]) on HTTP/1.1, apart from the
//! public API (its own port, its own access rules: [`access`](super::access)).
//!
//! It is a task child: the accept loop is the child; each connection is a
//! task of its own, so an open event stream survives a restart of the actor. The
//! socket is bound with `SO_REUSEADDR`, so a restarted incarnation binds
//! again at once. After an upgrade hands over, the new process starts this
//! child once the old one has released the port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::ActorProcessingErr;
use socket2::{Domain, Protocol, Socket, Type};
use supervisors::TaskResult;

use crate::admin::routes::{self, Bound};
use crate::node::Node;

/// Why the admin listener cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on admin.addr {addr}: {source} (set admin.addr, or empty to turn it off)")]
pub(crate) struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, BindError> {
    let fail = |source| BindError { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(128).map_err(fail)?;
    tokio::net::TcpListener::from_std(socket.into()).map_err(fail)
}

/// Most connections the admin listener holds at once; one past it is
/// closed as soon as it is accepted.
pub(crate) const MAX_CONNECTIONS: usize = 128;

/// Longest a write to an admin client may wait on it: a viewer that stops
/// reading is dropped after this, freeing its buffers.
pub(crate) const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// The send buffer of an admin connection, bytes.
const SEND_BUFFER: usize = 16 * 1024;

/// Binds `admin.addr` and returns the accept loop.
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    let Some(addr) = node.config().admin.listen() else {
        return Err("admin.addr is empty: the admin listener is off".into());
    };
    let listener = bind(addr)?;
    let local = listener.local_addr()?;
    let bound = Bound {
        loopback: local.ip().is_loopback(),
    };
    node.set_admin_port(local.port());
    tracing::info!(
        "admin listening on {local} (observer: http://{local}/observer; every caller logs in: `diem ctl observe` prints a login link)"
    );
    Ok(accept_loop(node, listener, bound))
}

async fn accept_loop(node: Arc<Node>, listener: tokio::net::TcpListener, bound: Bound) -> TaskResult {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            node.metrics.admin_refused();
            tracing::debug!(client = %peer, "admin connection closed: {MAX_CONNECTIONS} are open");
            continue;
        };
        // Frames are small and must leave at once (Nagle would hold one
        // behind the previous frame's delayed ACK, ~40 ms).
        let _ = stream.set_nodelay(true);
        // A small send buffer: a viewer that stops reading fills it within
        // seconds and then meets the write deadline, pinning little kernel
        // memory meanwhile (frames are a few KiB; the kernel doubles this).
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(WRITE_DEADLINE));
        let node = node.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| routes::handle(node.clone(), bound, req, peer));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(true);
            let _ = builder
                .serve_connection(TokioIo::new(Box::pin(stream)), service)
                .await;
            drop(slot);
        });
    }
}
