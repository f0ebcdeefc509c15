//! Supervision micro-benchmarks, the same operations as
//! benches/otp/bench.erl (in the workspace root) measures on Erlang/OTP:
//!
//! * `call`: a call round trip to a worker;
//! * `restart`: a permanent child stops with reason `crash` (Erlang's
//!   `{stop, crash, S}`) → its supervisor restarts it → the replacement
//!   answers a call; `restart_kill`: the same with an untrappable kill;
//! * `one_for_all_100`: child 1 of 100 crashes → the supervisor terminates
//!   100..2, starts 1..100 → child 100 answers a call;
//! * `spawn_stop_100k`: spawn 100,000 actors that stop at once, wait for all.
//!
//! Each runs on a current-thread runtime and on a 2-worker multi-thread
//! runtime, inside the runtime (not across `block_on`), so the figures show
//! what the layout costs. `cargo bench -p supervisors --bench supervision`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // tests and benches may panic on setup failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use supervisors::{start_root, ChildSpec, EventBus, Shutdown, Strategy, SupervisorFlags, SupervisorSpec};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

#[derive(Debug)]
enum Msg {
    Ping(RpcReplyPort<()>),
    Crash,
}

#[cfg(feature = "cluster")]
impl ractor::Message for Msg {}

/// A worker that reports its start to the bench (like `init` notifying the
/// Erlang bench), answers pings, and stops with `crash` on demand.
struct Worker;

impl Actor for Worker {
    type Msg = Msg;
    type State = ();
    type Arguments = Option<mpsc::UnboundedSender<ActorRef<Msg>>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        notify: Self::Arguments,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(tx) = notify {
            let _ = tx.send(myself);
        }
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<Msg>, msg: Msg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Ping(reply) => {
                let _ = reply.send(());
            }
            Msg::Crash => myself.stop(Some("crash".into())),
        }
        Ok(())
    }
}

/// Stops as soon as it has started.
struct Ephemeral;

impl Actor for Ephemeral {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn post_start(&self, myself: ActorRef<()>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        myself.stop(None);
        Ok(())
    }
}

fn runtimes() -> Vec<(&'static str, Runtime)> {
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match (current, multi) {
        (Ok(c), Ok(m)) => vec![("current_thread", c), ("multi_thread_2", m)],
        _ => panic!("cannot build tokio runtimes"),
    }
}

/// Runs `f(iters)` as a task inside `rt` and returns the time it reports.
fn in_runtime<F, Fut>(rt: &Runtime, iters: u64, f: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Duration> + Send + 'static,
{
    let task = f(iters);
    rt.block_on(async move { tokio::spawn(task).await.unwrap_or_default() })
}

fn worker_spec(id: &str, notify: Option<mpsc::UnboundedSender<ActorRef<Msg>>>) -> ChildSpec {
    ChildSpec::worker(id, move |ctx| {
        let notify = notify.clone();
        async move { ctx.spawn(Worker, notify).await }
    })
}

fn storm_flags(strategy: Strategy) -> SupervisorFlags {
    SupervisorFlags::new(strategy)
        .intensity(1_000_000_000)
        .period(Duration::from_secs(1))
}

async fn call_loop(iters: u64) -> Duration {
    let (w, _) = Actor::spawn(None, Worker, None).await.expect("spawn");
    let start = Instant::now();
    for _ in 0..iters {
        ractor::call!(w, Msg::Ping).expect("ping");
    }
    let elapsed = start.elapsed();
    w.stop(None);
    elapsed
}

async fn restart_loop(iters: u64, kill: bool) -> Duration {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::new(storm_flags(Strategy::OneForOne)).child(worker_spec("w", Some(tx)));
    let root = start_root("bench", spec, EventBus::new()).await.expect("root");
    let mut current = rx.recv().await.expect("first start");
    let start = Instant::now();
    for _ in 0..iters {
        if kill {
            current.get_cell().kill();
        } else {
            let _ = current.cast(Msg::Crash);
        }
        current = rx.recv().await.expect("restarted");
        ractor::call!(current, Msg::Ping).expect("replacement answers");
    }
    let elapsed = start.elapsed();
    root.shutdown().await;
    elapsed
}

async fn group_restart_loop(iters: u64) -> Duration {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut spec = SupervisorSpec::new(storm_flags(Strategy::OneForAll));
    for i in 1..=100 {
        let notify = (i == 1 || i == 100).then(|| tx.clone());
        spec = spec
            .child(worker_spec(&format!("c{i}"), notify).shutdown(Shutdown::Timeout(Duration::from_secs(5))));
    }
    let root = start_root("bench", spec, EventBus::new()).await.expect("root");
    let mut first = rx.recv().await.expect("c1");
    let _last = rx.recv().await.expect("c100");
    let start = Instant::now();
    for _ in 0..iters {
        let _ = first.cast(Msg::Crash);
        first = rx.recv().await.expect("c1 again");
        let last = rx.recv().await.expect("c100 again");
        ractor::call!(last, Msg::Ping).expect("c100 answers");
    }
    let elapsed = start.elapsed();
    root.shutdown().await;
    elapsed
}

async fn spawn_stop_loop(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let (_, h) = Actor::spawn(None, Ephemeral, ()).await.expect("spawn");
            handles.push(h);
        }
        for h in handles {
            let _ = h.await;
        }
        total += start.elapsed();
    }
    total
}

fn benches(c: &mut Criterion) {
    // Crash reports are not part of what is measured (the Erlang bench
    // silences its logger the same way).
    std::panic::set_hook(Box::new(|_| {}));
    for (name, rt) in runtimes() {
        let rt = Arc::new(rt);
        let mut g = c.benchmark_group(name);
        g.measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        g.bench_function("call", |b| b.iter_custom(|n| in_runtime(&rt, n, call_loop)));
        g.bench_function("restart", |b| {
            b.iter_custom(|n| in_runtime(&rt, n, |n| restart_loop(n, false)))
        });
        g.bench_function("restart_kill", |b| {
            b.iter_custom(|n| in_runtime(&rt, n, |n| restart_loop(n, true)))
        });
        g.sample_size(20);
        g.bench_function("one_for_all_100", |b| {
            b.iter_custom(|n| in_runtime(&rt, n, group_restart_loop))
        });
        g.sample_size(10).measurement_time(Duration::from_secs(8));
        g.bench_function("spawn_stop_100k", |b| {
            b.iter_custom(|n| in_runtime(&rt, n, spawn_stop_loop))
        });

        g.finish();
    }
}

criterion_group!(supervision, benches);
criterion_main!(supervision);

/// diem's allocator (src/main.rs): the figures are those of the layout diem
/// serves with. glibc's malloc makes `spawn_stop_100k` 2.5-3.5x slower on
/// the multi-thread runtime (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
