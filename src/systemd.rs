//! systemd: `Type=notify` notifications, the watchdog's period, and
//! socket activation. Without `NOTIFY_SOCKET` (or `LISTEN_FDS`) none of
//! this does anything.
//!
//! * [`ready`] (`READY=1` with a `STATUS=` line) once the tree is up,
//!   [`reloading`] (`RELOADING=1` with `MONOTONIC_USEC=`) and [`ready`]
//!   again around `reload`, [`stopping`] (`STOPPING=1`) when a drain
//!   begins, [`main_pid`] (`MAINPID=`) when an upgrade hands the service
//!   to a new process.
//! * [`watchdog_interval`]: half of `WATCHDOG_USEC`, the period at which
//!   the watchdog actor ([`watchdog`](crate::watchdog)) sends `WATCHDOG=1`.
//! * [`activated`]: the sockets systemd passed (`LISTEN_FDS`, names from
//!   `LISTEN_FDNAMES`), so that systemd owns the listening socket and even
//!   a crash restart refuses no connection.
//!
//! The messages are sent with the `sd-notify` crate, the sockets taken
//! with `listenfd` (which checks each is a listening socket of the right
//! kind before it is used).

use std::time::Duration;

use sd_notify::NotifyState;

/// Whether a service manager listens (`NOTIFY_SOCKET` is set).
pub(crate) fn active() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty())
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}

/// `READY=1` with a one-line status.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STATUS=` alone.
pub(crate) fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// `RELOADING=1` with the monotonic clock, as systemd's `Type=notify-reload`
/// expects; [`ready`] ends the reload.
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading the configuration"),
        ]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1`: the drain has begun.
pub(crate) fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// `MAINPID=`: the service is now the process `pid` (after an upgrade).
pub(crate) fn main_pid(pid: u32, status: &str) {
    send(&[NotifyState::MainPid(pid), NotifyState::Status(status)]);
}

/// `WATCHDOG=1`.
pub(crate) fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (as sd_notify(3)
/// advises), when systemd's watchdog is on for this process.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|period| !period.is_zero())
        .map(|period| period / 2)
}

/// The sockets systemd passed.
#[derive(Debug, Default)]
pub struct Activated {
    /// The HTTP listening socket (a TCP socket).
    pub http: Option<std::net::TcpListener>,
    /// The control socket (a Unix stream socket).
    pub control: Option<std::os::unix::net::UnixListener>,
}

/// A socket systemd passed that diem cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// Not a listening socket of a kind diem serves on.
    #[error("socket activation: fd {index} (named `{name}`) is {reason}")]
    Unusable {
        /// Its position among the passed fds.
        index: usize,
        /// Its name in `LISTEN_FDNAMES`.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two sockets for one purpose.
    #[error("socket activation: more than one {0} socket was passed")]
    Duplicate(&'static str),
}

/// Takes the sockets systemd passed (`LISTEN_FDS`, checked against
/// `LISTEN_PID`): a TCP socket is the HTTP socket, a Unix stream socket
/// the control socket (names in `LISTEN_FDNAMES`, e.g.
/// `FileDescriptorName=http`, are only reported). Call it before any
/// thread starts: it clears the variables, so that a process started by
/// an upgrade does not take them again.
pub fn activated() -> Result<Activated, ActivationError> {
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    let mut found = Activated::default();
    for index in 0..fds.len() {
        let name = names.get(index).cloned().unwrap_or_else(|| "unnamed".into());
        match fds.take_tcp_listener(index) {
            Ok(Some(tcp)) => {
                if found.http.replace(tcp).is_some() {
                    return Err(ActivationError::Duplicate("TCP (http)"));
                }
                continue;
            }
            Ok(None) => continue,
            Err(_) => {}
        }
        match fds.take_unix_listener(index) {
            Ok(Some(unix)) => {
                if found.control.replace(unix).is_some() {
                    return Err(ActivationError::Duplicate("Unix (control)"));
                }
            }
            Ok(None) => {}
            Err(e) => {
                return Err(ActivationError::Unusable {
                    index,
                    name,
                    reason: format!("neither a TCP nor a Unix stream socket ({e})"),
                })
            }
        }
    }
    Ok(found)
}

/// The one-line `STATUS=` summary of `node`.
pub(crate) fn summary(node: &crate::node::Node) -> String {
    let corpus = node.corpus.status();
    let source = match corpus.source {
        crate::store::snapshot::Source::Embedded => "embedded",
        crate::store::snapshot::Source::Postgres { .. } => "postgres",
    };
    let limiter = if node.limiter.settings().enabled {
        match node.limiter.backend() {
            crate::limiter::backend::Backend::Redis => "redis",
            crate::limiter::backend::Backend::Local => "local (redis unreachable)",
        }
    } else {
        "off"
    };
    format!(
        "serving {} sentences from {source}; {} workers; limiter {limiter}; {} connections open",
        corpus.sentences,
        node.workers.size(),
        node.http.open_connections()
    )
}
