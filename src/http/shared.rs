//! The listening socket and the connections opened on it.
//!
//! The socket is bound once, when the node starts (or received from
//! systemd's socket activation, or from the process this one upgrades),
//! and kept here rather than in the listener. Each listener incarnation accepts on a
//! duplicate of it, so killing or restarting the listener never closes the
//! socket: connections arriving meanwhile wait in the kernel's backlog and
//! are accepted by the next incarnation. Connections are tracked here too
//! ([`Drain`]), so they outlive listener
//! restarts and can be drained on shutdown. An upgrade hands a duplicate
//! of the same socket to the new process ([`HttpShared::duplicate`]): the
//! kernel's accept queue is shared, so no queued connection is lost when
//! this process closes its copy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hyper_util::server::graceful::GracefulConnection;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{watch, Notify, Semaphore};

use crate::config::HttpConfig;
use crate::http::drain::Drain;

/// The socket, the connection tracker and the connection limit.
#[derive(Debug)]
pub(crate) struct HttpShared {
    socket: Mutex<Option<std::net::TcpListener>>,
    addr: OnceLock<SocketAddr>,
    drain: Drain,
    slots: OnceLock<Arc<Semaphore>>,
    open: Arc<OpenCount>,
    last_rejection_log: AtomicU64,
    epoch: std::time::Instant,
    gate: watch::Sender<bool>,
}

impl Default for HttpShared {
    fn default() -> Self {
        Self {
            socket: Mutex::new(None),
            addr: OnceLock::new(),
            drain: Drain::default(),
            slots: OnceLock::new(),
            open: Arc::new(OpenCount::default()),
            last_rejection_log: AtomicU64::new(u64::MAX),
            epoch: std::time::Instant::now(),
            gate: watch::Sender::new(true),
        }
    }
}

impl HttpShared {
    /// Keeps `listener` (bound by [`bind`], or received from systemd or
    /// the process this one upgrades) as the node's listening socket.
    pub(crate) fn install(
        &self,
        listener: std::net::TcpListener,
        cfg: &HttpConfig,
    ) -> std::io::Result<SocketAddr> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let _ = self.slots.set(Arc::new(Semaphore::new(cfg.max_connections)));
        let _ = self.addr.set(addr);
        if let Ok(mut s) = self.socket.lock() {
            *s = Some(listener);
        }
        Ok(addr)
    }

    /// The address the socket is bound to.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    /// A duplicate of the socket (a new descriptor of the same socket).
    fn clone_socket(&self) -> std::io::Result<std::net::TcpListener> {
        let guard = self
            .socket
            .lock()
            .map_err(|_| std::io::Error::other("socket holder poisoned"))?;
        guard
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the listening socket is closed"))?
            .try_clone()
    }

    /// A duplicate of the socket to hand to another process.
    pub(crate) fn duplicate(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        Ok(self.clone_socket()?.into())
    }

    /// Holds the accept loops until [`HttpShared::open_gate`] (a process
    /// started by an upgrade accepts only once it is ready).
    pub(crate) fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    /// Lets the accept loops accept.
    pub(crate) fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// Waits until accepting is allowed.
    pub(crate) async fn gate_opened(&self) {
        let mut rx = self.gate.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    /// A duplicate of the socket for one listener incarnation.
    pub(crate) fn listener(&self) -> std::io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::from_std(self.clone_socket()?)
    }

    /// Closes the socket (new connections are refused once the listener's
    /// duplicate is gone too).
    pub(crate) fn close(&self) {
        if let Ok(mut s) = self.socket.lock() {
            s.take();
        }
    }

    /// The connection-slot semaphore (`http.max_connections`).
    pub(crate) fn slots(&self) -> Option<Arc<Semaphore>> {
        self.slots.get().cloned()
    }

    /// Serves one connection to its end under the drain ([`Drain::watch`]).
    pub(crate) async fn watch<C: GracefulConnection>(&self, conn: C) -> C::Output {
        self.drain.watch(conn).await
    }

    /// Counts a connection as open until the returned guard drops.
    pub(crate) fn opened(&self) -> OpenConnection {
        self.open.count.fetch_add(1, Ordering::AcqRel);
        OpenConnection {
            open: self.open.clone(),
        }
    }

    /// Whether a refused request may be logged now: once a second at most,
    /// so a flood of garbage cannot flood the log.
    pub(crate) fn may_log_rejection(&self) -> bool {
        let now = self.epoch.elapsed().as_secs();
        let last = self.last_rejection_log.load(Ordering::Relaxed);
        (last == u64::MAX || now > last)
            && self
                .last_rejection_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Connections open now.
    pub(crate) fn open_connections(&self) -> usize {
        self.open.count.load(Ordering::Acquire)
    }

    /// Waits until no connection is open, at most until `deadline`;
    /// returns whether none is. Woken by the last connection to close, not
    /// by polling.
    pub(crate) async fn none_open(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let closed = self.open.none.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.open_connections() == 0 {
                return true;
            }
            tokio::select! {
                () = closed => {}
                () = tokio::time::sleep_until(deadline) => return self.open_connections() == 0,
            }
        }
    }

    /// Asks every connection to finish its request in flight and close,
    /// and waits for them all, at most `grace`. Returns whether all closed.
    pub(crate) async fn drain(&self, grace: std::time::Duration) -> bool {
        tokio::time::timeout(grace, self.drain.drain()).await.is_ok()
    }
}

/// Binds `cfg.addr` (port 0 picks one), with `cfg.backlog`. Fails with the
/// OS error, e.g. when the address is in use.
pub(crate) fn bind(cfg: &HttpConfig) -> std::io::Result<std::net::TcpListener> {
    let domain = Domain::for_address(cfg.addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&cfg.addr.into())?;
    socket.listen(i32::try_from(cfg.backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// How many connections are open, and a wake-up for when none is.
#[derive(Debug, Default)]
struct OpenCount {
    count: AtomicUsize,
    none: Notify,
}

/// An open connection; the count drops with it.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    open: Arc<OpenCount>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if self.open.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.open.none.notify_waiters();
        }
    }
}
