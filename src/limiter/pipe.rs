//! The limiter's hot-path connection to Redis: one TCP connection on which
//! every command queued at that moment — each request's `SET key tat NX
//! GET PX ms`, and the batcher's `EVALSHA` of the GCRA script — goes out in
//! one `write`, and the replies are read back in order.
//!
//! Why not fred for these two commands: fred flushes its socket whenever
//! its command queue is empty, i.e. once per command under diem's load, and
//! its pipelines flush per command as well. Measured on this machine with
//! `examples/redis_batching.rs` (64 tasks, new keys, 2 threads; two rounds,
//! docs/benchmarks.md): fred one command at a time 143–192 k commands/s at
//! 4.0–4.8 µs of CPU each, fred pipelines 101–107 k/s at 6.2–6.4 µs, this
//! connection 154–201 k/s at 2.0–2.1 µs. The script's call went through
//! fred until 2026-12-03: its router task and command encoding were about a
//! quarter of the instructions of a request of the zipf mix
//! (docs/benchmarks.md). Everything else — loading the script, health
//! checks, `peek`, `forget`, reconnection with backoff — stays on fred.
//!
//! Failure handling is the limiter actor's: on any error (I/O, a reply that
//! is not what `SET … GET` or the script answers, the connection closed)
//! the task ends,
//! every request waiting on it gets no answer (and decides locally), and the
//! actor is told, withdraws the handle, and publishes a new one — with a
//! new connection — when its health check finds Redis back. A request
//! waits at most `redis.command_timeout` for its reply, as with fred.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::config::LONGEST_WAIT;
use crate::limiter::replica_wait::ReplicaWait;

/// The most commands one write carries.
const MAX_BATCH: usize = 512;

/// How many requests may wait for the connection.
const QUEUE: usize = 65_536;

/// One `SET key value NX GET PX ms`; the reply is the value the key held
/// (`None`: it did not exist, and now holds `value`), or the error Redis
/// answered (`MOVED` on a cluster whose slots moved, `READONLY` from a
/// demoted primary…).
#[derive(Debug)]
struct SetNx {
    key: String,
    value: i64,
    px_ms: i64,
    reply: oneshot::Sender<Result<Option<i64>, String>>,
}

/// One `EVALSHA sha numkeys key… arg…` of a script that returns integers;
/// the reply is those integers, or the error Redis answered (`NOSCRIPT`…).
#[derive(Debug)]
struct EvalSha {
    sha: Arc<str>,
    keys: Arc<[String]>,
    args: Vec<i64>,
    reply: oneshot::Sender<Result<Vec<i64>, String>>,
}

/// A command queued for the connection.
#[derive(Debug)]
enum Op {
    SetNx(SetNx),
    EvalSha(EvalSha),
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// ACL user, if any.
    pub username: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// Database number, if not 0.
    pub database: Option<u8>,
    /// TLS, for a `rediss` URL: the configuration and the name the
    /// server's certificate is checked against (the URL's host).
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl Target {
    /// The target of a Redis URL, when it is a single server this
    /// connection can reach (not a cluster, a sentinel set or a Unix
    /// socket), over TLS with `tls` when the URL asks for it
    /// ([`redis_tls`](super::redis_tls)).
    pub fn of_url(url: &str, tls: Option<Arc<ClientConfig>>) -> Option<Target> {
        let config = crate::config::parse_redis_url(url).ok()?;
        match config.server {
            fred::types::config::ServerConfig::Centralized { server } => {
                let tls = match tls {
                    Some(tls) => Some((tls, ServerName::try_from(server.host.to_string()).ok()?)),
                    None => None,
                };
                Some(Target {
                    addr: format!("{}:{}", server.host, server.port),
                    username: config.username,
                    password: config.password,
                    database: config.database.filter(|d| *d != 0),
                    tls,
                })
            }
            _ => None,
        }
    }

    /// The target of one primary of a Sentinel or Cluster URL (`primary`:
    /// as fred resolved it through the Sentinels, or a primary of the
    /// cluster's slot map), with the URL's credentials and database: the
    /// hot-path connections follow the current primaries, resolved again
    /// each time they are made. `None` for a single-server URL.
    pub fn of_primary(
        url: &str,
        primary: &fred::types::config::Server,
        tls: Option<Arc<ClientConfig>>,
    ) -> Option<Target> {
        let config = crate::config::parse_redis_url(url).ok()?;
        if matches!(
            config.server,
            fred::types::config::ServerConfig::Centralized { .. }
        ) {
            return None;
        }
        let tls = match tls {
            Some(tls) => Some((tls, ServerName::try_from(primary.host.to_string()).ok()?)),
            None => None,
        };
        Some(Target {
            addr: format!("{}:{}", primary.host, primary.port),
            username: config.username,
            password: config.password,
            database: config.database.filter(|d| *d != 0),
            tls,
        })
    }
}

/// Why the connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// The socket failed.
    #[error("redis connection: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed (a certificate refused, most often).
    #[error("redis TLS handshake: {0}")]
    Tls(std::io::Error),
    /// Redis answered something else than expected.
    #[error("redis replied {0}")]
    Reply(String),
    /// Redis answered the command with an error (the connection stays up).
    #[error("redis answered {0}")]
    Answered(String),
    /// No reply in time.
    #[error("no reply from redis within {0:?}")]
    Timeout(Duration),
    /// Fewer replicas than `redis.wait_replicas` acknowledged a batch.
    #[error("{0}")]
    Short(String),
}

/// The sending side: cheap to share.
#[derive(Debug, Clone)]
pub struct Pipe {
    tx: mpsc::Sender<Op>,
}

impl Pipe {
    /// Connects (over TLS, with `AUTH` and `SELECT`, as the target needs)
    /// within `timeout`, and returns the pipe and the task that drives it
    /// (which returns why it ended). With `wait`, each batch ends with
    /// Redis's `WAIT` and is answered when it replies
    /// ([`replica_wait`](super::replica_wait)).
    pub async fn connect(
        target: &Target,
        timeout: Duration,
        wait: Option<ReplicaWait>,
    ) -> Result<(Pipe, BoxFuture<'static, PipeError>), PipeError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&target.addr))
            .await
            .map_err(|_| PipeError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        match &target.tls {
            None => Self::start(stream, target, timeout, wait).await,
            Some((config, name)) => {
                let tls = tokio::time::timeout(
                    timeout,
                    TlsConnector::from(config.clone()).connect(name.clone(), stream),
                )
                .await
                .map_err(|_| PipeError::Timeout(timeout))?
                .map_err(PipeError::Tls)?;
                Self::start(tls, target, timeout, wait).await
            }
        }
    }

    /// Says `AUTH` and `SELECT` on `stream` as the target needs, and
    /// returns the pipe and its task.
    async fn start<S>(
        mut stream: S,
        target: &Target,
        timeout: Duration,
        wait: Option<ReplicaWait>,
    ) -> Result<(Pipe, BoxFuture<'static, PipeError>), PipeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut hello = Vec::new();
        if let Some(password) = &target.password {
            match &target.username {
                Some(user) => command(&mut hello, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => command(&mut hello, &[b"AUTH", password.as_bytes()]),
            }
        }
        if let Some(db) = target.database {
            command(
                &mut hello,
                &[b"SELECT", itoa::Buffer::new().format(db).as_bytes()],
            );
        }
        let expected = usize::from(target.password.is_some()) + usize::from(target.database.is_some());
        if expected > 0 {
            tokio::time::timeout(timeout, async {
                stream.write_all(&hello).await?;
                for _ in 0..expected {
                    match read_reply(&mut stream, &mut buf).await? {
                        Reply::Ok => {}
                        other => return Err(PipeError::Reply(format!("{other:?} to AUTH/SELECT"))),
                    }
                }
                Ok::<_, PipeError>(())
            })
            .await
            .map_err(|_| PipeError::Timeout(timeout))??;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        Ok((Pipe { tx }, Box::pin(drive(stream, buf, rx, timeout, wait))))
    }

    /// `SET key value NX GET PX px_ms`: the value `key` held, or `None` if
    /// it held none (and now holds `value`). [`PipeError::Answered`] if
    /// Redis answered an error (the connection stays up); other errors if
    /// the connection failed or its batch had no reply within the
    /// connection's timeout (kept by one timer in the connection's task,
    /// not one per request or batch).
    pub async fn set_nx_get(&self, key: String, value: i64, px_ms: i64) -> Result<Option<i64>, PipeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::SetNx(SetNx {
            key,
            value,
            px_ms,
            reply,
        }))?;
        rx.await.map_err(|_| failed())?.map_err(PipeError::Answered)
    }

    /// `EVALSHA sha keys.len() keys… args…` of a script that returns an
    /// array of integers: those integers. [`PipeError::Answered`] if Redis
    /// answered an error (`NOSCRIPT` when it does not hold the script);
    /// other errors as [`Pipe::set_nx_get`]'s.
    pub async fn evalsha(
        &self,
        sha: Arc<str>,
        keys: Arc<[String]>,
        args: Vec<i64>,
    ) -> Result<Vec<i64>, PipeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::EvalSha(EvalSha {
            sha,
            keys,
            args,
            reply,
        }))?;
        rx.await.map_err(|_| failed())?.map_err(PipeError::Answered)
    }

    fn send(&self, op: Op) -> Result<(), PipeError> {
        self.tx
            .try_send(op)
            .map_err(|_| PipeError::Reply("the connection is closed or saturated".into()))
    }
}

/// A command whose reply will not come: its batch failed or timed out.
fn failed() -> PipeError {
    PipeError::Reply("the connection failed or timed out".into())
}

/// Appends a RESP command of `parts`.
fn command(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(parts.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for p in parts {
        bulk(out, p);
    }
}

/// Appends one RESP bulk string: `$<len>\r\n<bytes>\r\n`.
fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends `SET key value NX GET PX ms`: the fixed parts as constants,
/// the numbers by `itoa`. A hand-written digit loop and the generic
/// encoding of the seven parts cost ~2,100 instructions per request, most
/// of the limiter's own code (docs/benchmarks.md).
fn set_nx_get(out: &mut Vec<u8>, op: &SetNx) {
    let mut value = itoa::Buffer::new();
    let mut px = itoa::Buffer::new();
    out.extend_from_slice(b"*7\r\n$3\r\nSET\r\n");
    bulk(out, op.key.as_bytes());
    bulk(out, value.format(op.value).as_bytes());
    out.extend_from_slice(b"$2\r\nNX\r\n$3\r\nGET\r\n$2\r\nPX\r\n");
    bulk(out, px.format(op.px_ms).as_bytes());
}

/// Appends `EVALSHA sha numkeys key… arg…`.
fn evalsha(out: &mut Vec<u8>, op: &EvalSha) {
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(3 + op.keys.len() + op.args.len()).as_bytes());
    out.extend_from_slice(b"\r\n$7\r\nEVALSHA\r\n");
    bulk(out, op.sha.as_bytes());
    bulk(out, n.format(op.keys.len()).as_bytes());
    for key in op.keys.iter() {
        bulk(out, key.as_bytes());
    }
    for arg in &op.args {
        bulk(out, n.format(*arg).as_bytes());
    }
}

/// A reply of the commands this connection sends.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// `+OK`.
    Ok,
    /// A nil bulk string: the key held nothing.
    Nil,
    /// A bulk string holding an integer: the key's value.
    Int(i64),
    /// An array of integers: the script's reply.
    Ints(Vec<i64>),
    /// An integer (`:…`): `WAIT`'s count of replicas.
    Count(i64),
    /// An error reply (`-…`).
    Error(String),
    /// Anything else (an unexpected type).
    Other(String),
}

/// Parses one reply at the start of `buf`: the reply and its length, or
/// `None` if incomplete.
fn parse(buf: &[u8]) -> Option<(Reply, usize)> {
    let eol = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = &buf[..eol];
    let text = || String::from_utf8_lossy(line).into_owned();
    match line.first()? {
        b'+' if line == b"+OK" => Some((Reply::Ok, eol + 2)),
        b'$' => {
            let len: i64 = std::str::from_utf8(&line[1..]).ok()?.parse().ok()?;
            if len < 0 {
                return Some((Reply::Nil, eol + 2));
            }
            let len = usize::try_from(len).ok()?;
            let end = eol + 2 + len;
            if buf.len() < end + 2 {
                return None;
            }
            let body = &buf[eol + 2..end];
            let reply = std::str::from_utf8(body)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .map_or_else(
                    || Reply::Other(String::from_utf8_lossy(body).into_owned()),
                    Reply::Int,
                );
            Some((reply, end + 2))
        }
        b'_' => Some((Reply::Nil, eol + 2)),
        b':' => match std::str::from_utf8(&line[1..]).ok().and_then(|d| d.parse().ok()) {
            Some(n) => Some((Reply::Count(n), eol + 2)),
            None => Some((Reply::Other(text()), eol + 2)),
        },
        b'-' => Some((
            Reply::Error(String::from_utf8_lossy(&line[1..]).into_owned()),
            eol + 2,
        )),
        b'*' => {
            let n: i64 = std::str::from_utf8(&line[1..]).ok()?.parse().ok()?;
            if n < 0 {
                return Some((Reply::Nil, eol + 2));
            }
            let mut at = eol + 2;
            let mut ints = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(4096));
            for _ in 0..n {
                let rest = &buf[at..];
                let end = rest.windows(2).position(|w| w == b"\r\n")?;
                let element = &rest[..end];
                let int = match element.split_first() {
                    Some((b':', digits)) => std::str::from_utf8(digits).ok().and_then(|d| d.parse().ok()),
                    _ => None,
                };
                match int {
                    Some(i) => ints.push(i),
                    // Not an integer: the connection is given up, so where
                    // the rest of the array ends does not matter.
                    None => {
                        let element = String::from_utf8_lossy(element);
                        return Some((Reply::Other(format!("an array holding {element}")), at + end + 2));
                    }
                }
                at += end + 2;
            }
            Some((Reply::Ints(ints), at))
        }
        _ => Some((Reply::Other(text()), eol + 2)),
    }
}

async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> Result<Reply, PipeError> {
    loop {
        if let Some((reply, used)) = parse(buf) {
            buf.advance(used);
            return Ok(reply);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(PipeError::Reply("the connection closed".into()));
        }
    }
}

/// Sends what is queued in one write, reads the replies in order, answers;
/// again, until the queue closes (the handle was dropped), the connection
/// fails, or a batch has no complete reply within `timeout` (then every
/// request waiting on it decides locally, and the actor replaces the
/// connection). With `wait`, the write ends with `WAIT`, and the batch's
/// requests are answered when its reply comes — if the replicas asked for
/// acknowledged the batch; if not, the connection ends as if it had failed.
///
/// One timer for the connection, not one per batch: a `timeout` per batch
/// took tokio's timer-wheel lock (one for the whole runtime) twice per
/// batch. The timer is set for the deadline of the batch in flight when it
/// was set; when it fires, a batch that began since moves it on to that
/// batch's deadline, so it fires at most once per `timeout` while Redis
/// answers, and cuts off a batch only `timeout` after that batch began.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut buf: BytesMut,
    mut rx: mpsc::Receiver<Op>,
    timeout: Duration,
    wait: Option<ReplicaWait>,
) -> PipeError {
    let mut batch: Vec<Op> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(if wait.is_some() { MAX_BATCH } else { 0 });
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    // The clock's arithmetic panics past its range: no configured timeout
    // is followed beyond a year.
    let timeout = timeout.min(LONGEST_WAIT);
    let timer = tokio::time::sleep(timeout);
    tokio::pin!(timer);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return PipeError::Reply("the limiter closed the connection".into());
        }
        let began = Instant::now();
        out.clear();
        for op in &batch {
            match op {
                Op::SetNx(op) => set_nx_get(&mut out, op),
                Op::EvalSha(op) => evalsha(&mut out, op),
            }
        }
        if let Some(wait) = &wait {
            wait.command(&mut out);
        }
        let exchange = async {
            stream.write_all(&out).await?;
            let Some(wait) = &wait else {
                for op in batch.drain(..) {
                    answer(op, read_reply(&mut stream, &mut buf).await?)?;
                }
                return Ok(());
            };
            replies.clear();
            for _ in 0..batch.len() {
                replies.push(read_reply(&mut stream, &mut buf).await?);
            }
            match read_reply(&mut stream, &mut buf).await? {
                Reply::Count(acked) => wait.acknowledged(acked).map_err(PipeError::Short)?,
                other => return Err(PipeError::Reply(format!("{other:?} to WAIT"))),
            }
            for (op, reply) in batch.drain(..).zip(replies.drain(..)) {
                answer(op, reply)?;
            }
            Ok::<(), PipeError>(())
        };
        tokio::pin!(exchange);
        loop {
            tokio::select! {
                biased;
                done = &mut exchange => match done {
                    Ok(()) => break,
                    Err(e) => return e,
                },
                () = &mut timer => {
                    let deadline = began + timeout;
                    if Instant::now() >= deadline {
                        return PipeError::Timeout(timeout);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// Answers `op` with `reply`; an error if the reply is not one of its
/// command's (the connection is then given up).
fn answer(op: Op, reply: Reply) -> Result<(), PipeError> {
    match (op, reply) {
        (Op::SetNx(op), Reply::Nil) => {
            let _ = op.reply.send(Ok(None));
        }
        (Op::SetNx(op), Reply::Int(held)) => {
            let _ = op.reply.send(Ok(Some(held)));
        }
        (Op::SetNx(op), Reply::Error(e)) => {
            let _ = op.reply.send(Err(e));
        }
        (Op::EvalSha(op), Reply::Ints(ints)) => {
            let _ = op.reply.send(Ok(ints));
        }
        (Op::EvalSha(op), Reply::Error(e)) => {
            let _ = op.reply.send(Err(e));
        }
        (Op::SetNx(_), other) => return Err(PipeError::Reply(format!("{other:?} to SET … NX GET"))),
        (Op::EvalSha(_), other) => return Err(PipeError::Reply(format!("{other:?} to EVALSHA"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
