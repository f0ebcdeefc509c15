//! Actor-layer micro-benchmarks of diem itself (the supervision ones are in
//! `supervisors/benches/supervision.rs`):
//!
//! * `send`: one-way messages to an actor (per message; the batch ends with
//!   a call so every message was handled) — Erlang's `gen_server:cast`;
//! * `send_counted`: the same to an actor a supervisor started (its
//!   messages timed and counted in its load, issue 30) through a counting
//!   handle (`supervisors::Counted`), as every diem actor is sent to;
//! * `dispatch`: a `GET /hitokoto/v2/?encode=json` from the connection's
//!   side to a worker actor and back, the API handler included
//!   (`WorkerPool::dispatch`);
//! * `limiter_local`: one decision of the in-process GCRA, distinct clients;
//! * `pick`: a random sentence from the snapshot of a 10,032-sentence corpus
//!   (synthetic, or `$DIEM_BENCH_CORPUS`: `benches/support/corpus.rs`),
//!   unfiltered and filtered.
//!
//! Actor benchmarks run inside a current-thread runtime and inside a
//! 2-worker multi-thread runtime (diem's layout). `cargo bench --bench actors`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/counter.rs"]
mod counter;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use counter::{Counter, Msg};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diem::api::request::Request;
use diem::api::route::Endpoint;
use diem::config::Config;
use diem::limiter::gcra::Params;
use diem::limiter::local::LocalStore;
use diem::node::Node;
use diem::store::bundle::read_bundle;
use diem::store::embedded;
use diem::store::snapshot::{Filter, Snapshot, Source};
use diem::workers::worker::Worker;
use ractor::Actor;
use tokio::runtime::Runtime;

/// diem's allocator (src/main.rs): the figures are those of the layout diem
/// serves with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn runtimes() -> Vec<(&'static str, Arc<Runtime>)> {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    vec![
        ("current_thread", Arc::new(current)),
        ("multi_thread_2", Arc::new(multi)),
    ]
}

fn in_runtime<F, Fut>(rt: &Runtime, iters: u64, f: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Duration> + Send + 'static,
{
    let task = f(iters);
    rt.block_on(async move { tokio::spawn(task).await.unwrap_or_default() })
}

async fn send_loop(iters: u64) -> Duration {
    let (actor, _) = Actor::spawn(None, Counter, ()).await.unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        actor.send_message(Msg::Count).unwrap();
    }
    let n = ractor::call!(actor, Msg::Sync).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(n, iters);
    actor.stop(None);
    elapsed
}

async fn send_counted_loop(iters: u64) -> Duration {
    let (root, actor) = counter::supervised("bench").await;
    let start = Instant::now();
    for _ in 0..iters {
        actor.send(Msg::Count).unwrap();
    }
    let n = counter::count(&actor).await;
    let elapsed = start.elapsed();
    assert_eq!(n, iters);
    root.shutdown().await;
    elapsed
}

fn request() -> Request {
    let (parts, _) = hyper::Request::get("/hitokoto/v2/?encode=json")
        .body(())
        .unwrap()
        .into_parts();
    Request {
        endpoint: Endpoint::of(&parts.method, parts.uri.path()),
        parts: Box::new(parts),
        body: Bytes::new(),
    }
}

async fn dispatch_loop(node: Arc<Node>, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let response = node.workers.dispatch(request()).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    start.elapsed()
}

fn corpus() -> Snapshot {
    match read_bundle(&corpus::dir(), |_| {}) {
        Ok(bundle) => Snapshot::build(bundle.sentences, Source::postgres_now()),
        Err(e) => {
            eprintln!("pick: the corpus is not readable ({e}); using the embedded one");
            Snapshot::build(embedded::sentences(), Source::Embedded)
        }
    }
}

fn benches(c: &mut Criterion) {
    for (name, rt) in runtimes() {
        let mut g = c.benchmark_group(name);
        g.measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        g.bench_function("send", |b| b.iter_custom(|n| in_runtime(&rt, n, send_loop)));
        g.bench_function("send_counted", |b| {
            b.iter_custom(|n| in_runtime(&rt, n, send_counted_loop))
        });

        let node = rt.block_on(async {
            let node = Node::new(Config::default(), None, None);
            for _ in 0..8 {
                Actor::spawn(None, Worker { node: node.clone() }, ())
                    .await
                    .unwrap();
            }
            while node.workers.size() < 8 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            node
        });
        g.bench_function("dispatch", |b| {
            b.iter_custom(|n| {
                let node = node.clone();
                in_runtime(&rt, n, move |n| dispatch_loop(node, n))
            })
        });
        g.finish();
    }

    let mut g = c.benchmark_group("sync");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let store = LocalStore::new(1_000_000);
    let params = Params {
        burst: 35,
        count: 36,
        period_secs: 360,
    };
    let mut i: u32 = 0;
    g.bench_function("limiter_local", |b| {
        b.iter(|| {
            i = i.wrapping_add(1) % 100_000;
            store.check(ipnet::IpNet::from(IpAddr::from(i.to_be_bytes())), &params)
        })
    });
    let snapshot = corpus();
    let mut rng = fastrand::Rng::with_seed(7);
    for (label, filter) in [
        ("all", Filter::default()),
        (
            "c=a",
            Filter {
                categories: 1,
                ..Filter::default()
            },
        ),
        (
            "c=a,d,k&length=20",
            Filter {
                categories: 1 | 1 << 3 | 1 << 10,
                max_len: 19,
                ..Filter::default()
            },
        ),
    ] {
        g.bench_with_input(BenchmarkId::new("pick", label), &filter, |b, f| {
            b.iter(|| snapshot.pick(f, &mut rng).map(|e| e.id))
        });
    }
    g.finish();
}

criterion_group!(actors, benches);
criterion_main!(actors);
