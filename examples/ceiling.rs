//! The ceiling for any HTTP service on this machine: a minimal hyper 1
//! server answering a fixed short body, with nothing else in the path.
//! `benches/load.sh` measures diem against it.
//!
//! It also runs the runtime-layout experiment of docs/benchmarks.md:
//! `--layout multi` is one multi-thread runtime (diem's layout),
//! `--layout per-core` one current-thread runtime per core, each with its
//! own listener on SO_REUSEPORT; `--hop actor` adds one ractor message to a
//! worker actor and back per request, as diem does.
//!
//! ```text
//! cargo run --release --example ceiling -- --addr 127.0.0.1:18080 --layout per-core --hop actor
//! ```

#![allow(clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

/// The allocator diem serves with (src/main.rs), so that the ceiling is not
/// lower than diem's for the allocator alone.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BODY: &[u8] = b"hello, world";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Layout {
    /// One multi-thread runtime, one worker thread per core.
    Multi,
    /// One current-thread runtime per core, SO_REUSEPORT listeners.
    PerCore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Hop {
    /// Answer in the connection task.
    None,
    /// Send each request to a worker actor and wait for its reply.
    Actor,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18080")]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value = "multi")]
    layout: Layout,
    #[arg(long, value_enum, default_value = "none")]
    hop: Hop,
    /// Threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

struct Echo;

/// A request for the fixed body.
#[derive(ractor_cluster::RactorMessage)]
struct Ask(oneshot::Sender<Bytes>);

impl Actor for Echo {
    type Msg = Ask;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        Ask(reply): Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(Bytes::from_static(BODY));
        Ok(())
    }
}

fn socket(addr: SocketAddr) -> std::net::TcpListener {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)
        .expect("socket");
    s.set_reuse_address(true).expect("reuseaddr");
    s.set_reuse_port(true).expect("reuseport");
    s.set_nonblocking(true).expect("nonblocking");
    s.bind(&addr.into()).expect("bind");
    s.listen(1024).expect("listen");
    s.into()
}

async fn serve(listener: std::net::TcpListener, hop: Hop, workers: usize) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    let mut pool = Vec::new();
    if hop == Hop::Actor {
        for _ in 0..workers {
            pool.push(Actor::spawn(None, Echo, ()).await.expect("spawn").0);
        }
    }
    let pool = Arc::new(pool);
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (pool, next) = (pool.clone(), next.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                let (pool, next) = (pool.clone(), next.clone());
                async move {
                    let body = if pool.is_empty() {
                        Bytes::from_static(BODY)
                    } else {
                        let (tx, rx) = oneshot::channel();
                        let i = next.fetch_add(1, Ordering::Relaxed) % pool.len();
                        let _ = pool[i].send_message(Ask(tx));
                        rx.await.unwrap_or_default()
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    eprintln!(
        "ceiling: listening on {} ({:?}, hop {:?}, {threads} threads)",
        args.addr, args.layout, args.hop
    );
    match args.layout {
        Layout::Multi => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve(socket(args.addr), args.hop, 8));
        }
        Layout::PerCore => {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let listener = socket(args.addr);
                    let hop = args.hop;
                    std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("runtime");
                        rt.block_on(serve(listener, hop, 4));
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
        }
    }
}
