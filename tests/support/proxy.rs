//! A TCP fault proxy, placed between diem and PostgreSQL or Redis, to make
//! them fail without touching the shared servers.
//!
//! Modes (changeable at any time): [`Mode::Pass`] forwards, [`Mode::Delay`]
//! forwards each chunk after a delay, [`Mode::Refuse`] closes every new
//! connection at once (as a server that is down), [`Mode::BlackHole`]
//! accepts and swallows everything in both directions on new and live
//! connections (as a network partition). [`FaultProxy::cut`] closes every
//! live connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward.
    Pass,
    /// Forward each chunk after this delay.
    Delay(Duration),
    /// Close new connections at once.
    Refuse,
    /// Swallow all traffic.
    BlackHole,
}

/// A running proxy.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: watch::Receiver<Mode>,
    mut cuts: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = cuts.changed() => return,
        };
        let current = *mode.borrow();
        match current {
            Mode::BlackHole => continue,
            Mode::Delay(d) => tokio::time::sleep(d).await,
            Mode::Pass | Mode::Refuse => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl FaultProxy {
    /// A proxy to `upstream`, passing traffic.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let (cuts, cuts_rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let current = *mode_rx.borrow();
                if current == Mode::Refuse {
                    drop(client);
                    continue;
                }
                let (mode_rx, mut cuts_rx) = (mode_rx.clone(), cuts_rx.clone());
                cuts_rx.borrow_and_update();
                tokio::spawn(async move {
                    let server = if current == Mode::BlackHole {
                        None
                    } else {
                        TcpStream::connect(upstream).await.ok()
                    };
                    let Some(server) = server else {
                        // Black hole: hold the connection open, answer nothing.
                        let mut client = client;
                        let mut buf = [0u8; 4096];
                        loop {
                            tokio::select! {
                                r = client.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { return },
                                _ = cuts_rx.changed() => return,
                            }
                        }
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pump(cr, sw, mode_rx.clone(), cuts_rx.clone()));
                    let down = tokio::spawn(pump(sr, cw, mode_rx, cuts_rx));
                    let _ = tokio::join!(up, down);
                });
            }
        });
        FaultProxy {
            addr,
            mode,
            cuts,
            task,
        }
    }

    /// Changes the mode.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Closes every live connection.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}
