//! The control socket's listening socket, held by the node.
//!
//! Like the HTTP socket ([`http::shared`](crate::http::shared)), it is
//! bound once per process — or received from systemd (socket activation)
//! or from the process this one upgrades — and kept here rather than in
//! the control socket actor: each incarnation of the actor accepts on a
//! duplicate, so killing the actor never makes the socket disappear, and
//! an upgrade hands the very same socket to the new process.
//!
//! At bind, a socket file left by a dead process is replaced, while one
//! that another process answers on makes the start fail (so two nodes never
//! share a socket), and anything that is not a socket is left alone. The
//! file is removed when the process exits, if it is still the one bound
//! here — unless the socket was handed to a new process (which then owns
//! it) or came from systemd (which owns it).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::private_dir::not_private;

/// Why the control socket cannot be bound.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// Something that is not a socket is at the path.
    #[error("control socket path {0} exists and is not a socket; remove it or set control.socket")]
    NotASocket(String),
    /// Another process answers on the socket.
    #[error(
        "control socket {0} is in use by a running process (another diem?); stop it or set control.socket"
    )]
    InUse(String),
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was tried.
        action: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The socket's directory could be written by another user.
    #[error(
        "refusing the control socket's directory {path}: {why}; another user could replace the socket \
         (remove it, or set control.socket to a path in a directory only this user can write)"
    )]
    UnsafeDir {
        /// The directory.
        path: String,
        /// Whose it is, or what mode it has.
        why: String,
    },
    /// The socket is closed (handed over or shutting down).
    #[error("the control socket is closed")]
    Closed,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.display().to_string();
    move |source| SocketError::Io { action, path, source }
}

/// The socket file this process bound; removed when dropped if it is
/// still ours (the same inode).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    inode: u64,
    remove: bool,
}

impl SocketFile {
    /// The file at `path` as it is now (for a socket received from the
    /// process this one upgrades, which is now this process's to remove).
    pub(crate) fn adopt(path: &Path) -> Option<Self> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        meta.file_type().is_socket().then(|| Self {
            path: path.to_owned(),
            inode: meta.ino(),
            remove: true,
        })
    }

    /// Lets the file be: another process serves on it now.
    fn keep(mut self) {
        self.remove = false;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if self.remove && ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Makes room for a socket at `path`: removes a stale one, refuses a live
/// one or anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), SocketError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.display().to_string()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse(path.display().to_string())),
        Err(_) => std::fs::remove_file(path).map_err(io("remove the stale control socket", path)),
    }
}

/// Binds the control socket at `path`, mode 0600, creating its directory
/// (mode 0700) when missing; refuses a directory another user could write
/// ([`not_private`]).
pub(crate) fn bind(path: &Path) -> Result<(UnixListener, SocketFile), SocketError> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io("create the directory of", path))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io("set the mode of the directory of", path))?;
        }
        if let Some(why) = not_private(dir) {
            return Err(SocketError::UnsafeDir {
                path: dir.display().to_string(),
                why,
            });
        }
    }
    clear_stale(path)?;
    let listener = UnixListener::bind(path).map_err(io("bind the control socket", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("set the mode of", path))?;
    listener
        .set_nonblocking(true)
        .map_err(io("set non-blocking mode on", path))?;
    let file = SocketFile::adopt(path).ok_or_else(|| SocketError::NotASocket(path.display().to_string()))?;
    Ok((listener, file))
}

/// The control socket of the node: the listening socket, and the file to
/// remove at exit when this process owns it.
#[derive(Debug, Default)]
pub(crate) struct ControlShared {
    listener: Mutex<Option<UnixListener>>,
    file: Mutex<Option<SocketFile>>,
    path: Mutex<Option<PathBuf>>,
    busy: Arc<AtomicUsize>,
}

/// A command being run and answered; see [`ControlShared::busy`].
#[derive(Debug)]
pub(crate) struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ControlShared {
    /// Keeps `listener` (bound at `path`); `file` is what to remove at exit.
    pub(crate) fn install(
        &self,
        listener: UnixListener,
        path: PathBuf,
        file: Option<SocketFile>,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        if let Ok(mut l) = self.listener.lock() {
            *l = Some(listener);
        }
        if let Ok(mut f) = self.file.lock() {
            *f = file;
        }
        if let Ok(mut p) = self.path.lock() {
            *p = Some(path);
        }
        Ok(())
    }

    /// Takes over the removal of the socket file at exit (a process started
    /// by an upgrade, once it serves: before that, the file is the old
    /// process's, and a new process that fails must leave it).
    pub(crate) fn adopt_file(&self) {
        let Some(path) = self.path() else { return };
        if let Ok(mut f) = self.file.lock() {
            *f = SocketFile::adopt(&path);
        }
    }

    /// The path the socket is bound at.
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.path.lock().ok()?.clone()
    }

    /// A duplicate of the socket for one actor incarnation.
    pub(crate) fn listener(&self) -> Result<tokio::net::UnixListener, SocketError> {
        let guard = self.listener.lock().map_err(|_| SocketError::Closed)?;
        let listener = guard.as_ref().ok_or(SocketError::Closed)?;
        let copy = listener.try_clone().map_err(|source| SocketError::Io {
            action: "duplicate",
            path: "the control socket".into(),
            source,
        })?;
        tokio::net::UnixListener::from_std(copy).map_err(|source| SocketError::Io {
            action: "register",
            path: "the control socket".into(),
            source,
        })
    }

    /// A duplicate of the socket to hand to another process.
    pub(crate) fn duplicate(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        let guard = self
            .listener
            .lock()
            .map_err(|_| std::io::Error::other("control socket holder poisoned"))?;
        let listener = guard
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the control socket is closed"))?;
        Ok(listener.try_clone()?.into())
    }

    /// Closes this process's copy without removing the file: another
    /// process (the upgraded one) serves on it now.
    pub(crate) fn hand_over(&self) {
        if let Ok(mut f) = self.file.lock() {
            if let Some(file) = f.take() {
                file.keep();
            }
        }
        if let Ok(mut l) = self.listener.lock() {
            l.take();
        }
    }

    /// Marks a command as being run and answered until the guard drops, so
    /// that the process does not exit between a command (`shutdown`,
    /// `upgrade`) and its reply.
    pub(crate) fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.busy.clone())
    }

    /// Waits until no command is being answered, at most `limit`.
    pub(crate) async fn answered(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.busy.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes the socket and removes its file if this process owns it.
    pub(crate) fn close(&self) {
        if let Ok(mut l) = self.listener.lock() {
            l.take();
        }
        if let Ok(mut f) = self.file.lock() {
            f.take();
        }
    }
}
