//! The hand-over channel between the running process and the new one: a
//! Unix stream socket carrying one JSON message per line, the first of
//! which carries the listening sockets as `SCM_RIGHTS` ancillary data.
//!
//! Received descriptors arrive as [`OwnedFd`]s with close-on-exec set
//! (`MSG_CMSG_CLOEXEC`), so nothing else the process starts inherits them.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// The environment variable that tells a new process where to fetch its
/// sockets: the path of the hand-over socket.
pub(crate) const SOCKET_VAR: &str = "DIEM_UPGRADE_SOCKET";

/// The most descriptors one message carries.
const MAX_FDS: usize = 4;

/// Longest message line.
const MAX_LINE: usize = 64 * 1024;

/// What a descriptor passed in [`Message::Hello`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Passed {
    /// The HTTP listening socket.
    Http,
    /// The control socket.
    Control,
    /// The running process's stderr (where logs go once it has exited).
    Stderr,
}

/// What the new process must have before it says it is ready: what the
/// running one has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Needs {
    /// Redis connected (the limiter decides in Redis).
    pub redis: bool,
    /// The corpus loaded from PostgreSQL (not the embedded default).
    pub postgres_corpus: bool,
}

/// One message of the hand-over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub(crate) enum Message {
    /// Old → new, with the descriptors listed in `passed`.
    Hello {
        /// The running process.
        old_pid: u32,
        /// Its version.
        old_version: String,
        /// The descriptors attached, in order.
        passed: Vec<Passed>,
        /// What to have before saying ready.
        needs: Needs,
    },
    /// New → old: the tree is up with what it needs.
    Ready {
        /// The new process.
        pid: u32,
        /// Its version.
        version: String,
    },
    /// New → old: it cannot start.
    Failed {
        /// Why.
        reason: String,
    },
    /// Old → new: start accepting.
    Go,
    /// New → old: accepting on the shared sockets.
    Accepting,
    /// Old → new: the old process no longer accepts, and has released what
    /// only one process may hold (the cluster's port).
    Released,
}

/// Why the hand-over channel failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The socket failed.
    #[error("hand-over socket: {0}")]
    Io(#[from] std::io::Error),
    /// The other side closed the channel.
    #[error("the other process closed the hand-over socket")]
    Closed,
    /// Not a message of this protocol.
    #[error("unreadable hand-over message: {0}")]
    Garbled(String),
}

/// One end of the hand-over channel.
#[derive(Debug)]
pub(crate) struct Channel {
    stream: UnixStream,
    buffer: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Channel {
    /// A channel over a connected stream.
    pub(crate) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// The peer's pid, as the kernel tells it.
    pub(crate) fn peer_pid(&self) -> Option<i32> {
        self.stream.peer_cred().ok().and_then(|c| c.pid())
    }

    /// Sends `message` with `fds` attached.
    pub(crate) async fn send(&self, message: &Message, fds: &[BorrowedFd<'_>]) -> Result<(), WireError> {
        let mut line = serde_json::to_vec(message).map_err(|e| WireError::Garbled(e.to_string()))?;
        line.push(b'\n');
        let mut sent = 0;
        while sent < line.len() {
            self.stream.writable().await?;
            let attach = if sent == 0 { fds } else { &[] };
            let result = self.stream.try_io(Interest::WRITABLE, || {
                let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                if !attach.is_empty() && !control.push(SendAncillaryMessage::ScmRights(attach)) {
                    return Err(std::io::Error::other("too many descriptors for one message"));
                }
                sendmsg(
                    &self.stream,
                    &[IoSlice::new(&line[sent..])],
                    &mut control,
                    SendFlags::NOSIGNAL,
                )
                .map_err(std::io::Error::from)
            });
            match result {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Receives the next message and the descriptors that came with it.
    pub(crate) async fn recv(&mut self) -> Result<(Message, Vec<OwnedFd>), WireError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let message = serde_json::from_slice(&line)
                    .map_err(|e| WireError::Garbled(format!("{e}: {}", String::from_utf8_lossy(&line))))?;
                return Ok((message, std::mem::take(&mut self.fds)));
            }
            if self.buffer.len() > MAX_LINE {
                return Err(WireError::Garbled("a message longer than 64 KiB".into()));
            }
            self.stream.readable().await?;
            let mut chunk = [0u8; 4096];
            let mut received = Vec::new();
            let result = self.stream.try_io(Interest::READABLE, || {
                let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let msg = recvmsg(
                    &self.stream,
                    &mut [IoSliceMut::new(&mut chunk)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )
                .map_err(std::io::Error::from)?;
                for ancillary in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(fds) = ancillary {
                        received.extend(fds);
                    }
                }
                Ok(msg.bytes)
            });
            self.fds.append(&mut received);
            match result {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[tokio::test]
    async fn messages_carry_descriptors_that_work() {
        let (a, b) = UnixStream::pair().unwrap();
        let (old, mut new) = (Channel::new(a), Channel::new(b));
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let hello = Message::Hello {
            old_pid: 1,
            old_version: "0.0.0".into(),
            passed: vec![Passed::Http],
            needs: Needs::default(),
        };
        old.send(&hello, &[tcp.as_fd()]).await.unwrap();
        old.send(&Message::Go, &[]).await.unwrap();
        let (got, fds) = new.recv().await.unwrap();
        assert_eq!(got, hello);
        assert_eq!(fds.len(), 1);
        let (go, none) = new.recv().await.unwrap();
        assert_eq!((go, none.len()), (Message::Go, 0));
        // The received socket is the same listening socket.
        drop(tcp);
        let passed = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert!(passed.accept().is_ok());
        drop(old);
        assert!(matches!(new.recv().await, Err(WireError::Closed)));
    }
}
