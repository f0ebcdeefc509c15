//! How the limiter's hot-path command reaches Redis, three ways, measured:
//! fred one command at a time (what diem did), fred pipelines of whatever
//! is queued, and diem's batching connection (`limiter::pipe`).
//!
//! ```sh
//! cargo run --release --example redis_batching -- [individual|pipeline|pipe] [SECONDS]
//! ```
//!
//! 64 tasks send `SET key 1 NX GET PX 10000` with new keys for SECONDS
//! (default 4) on a 2-thread runtime; prints commands per second and the
//! process's CPU time per command. Redis at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diem::limiter::pipe::{Pipe, Target};
use fred::prelude::{Builder, ClientLike, Config, Expiration, KeysInterface, SetOptions};
use fred::types::Value;
use tokio::sync::{mpsc, oneshot};

const TASKS: usize = 64;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

type Job = (String, oneshot::Sender<()>);

/// Runs TASKS loops of `one` until `end`; returns the commands done.
async fn drive<F, Fut>(end: Instant, prefix: String, one: F) -> u64
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (one, done, prefix) = (one.clone(), done.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < end {
                i += 1;
                one(format!("{prefix}{t}:{i}")).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "pipe".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = Builder::from_config(Config::from_url(&url)?).build()?;
    client.init().await?;
    let prefix = format!("diem_example_{}:{mode}:", std::process::id());
    let end = Instant::now() + Duration::from_secs(secs);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let done = match mode.as_str() {
        "individual" => {
            drive(end, prefix, move |key: String| {
                let client = client.clone();
                async move {
                    let _: Result<Option<String>, _> = client
                        .set(key, 1, Some(Expiration::PX(10_000)), Some(SetOptions::NX), true)
                        .await;
                }
            })
            .await
        }
        "pipeline" => {
            let (tx, mut rx) = mpsc::channel::<Job>(65_536);
            let c = client.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(256);
                while rx.recv_many(&mut batch, 256).await > 0 {
                    let pipeline = c.pipeline();
                    for (key, _) in &batch {
                        let _: Result<(), _> = pipeline
                            .set(
                                key.as_str(),
                                1,
                                Some(Expiration::PX(10_000)),
                                Some(SetOptions::NX),
                                true,
                            )
                            .await;
                    }
                    let _ = pipeline.try_all::<Value>().await;
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(());
                    }
                }
            });
            drive(end, prefix, move |key: String| {
                let tx = tx.clone();
                async move {
                    let (reply, rx) = oneshot::channel();
                    if tx.send((key, reply)).await.is_ok() {
                        let _ = rx.await;
                    }
                }
            })
            .await
        }
        "pipe" => {
            let target =
                Target::of_url(&url, None).ok_or_else(|| anyhow::anyhow!("not a single-server URL"))?;
            let (pipe, run) = Pipe::connect(&target, Duration::from_secs(2), None).await?;
            tokio::spawn(run);
            drive(end, prefix, move |key: String| {
                let pipe = pipe.clone();
                async move {
                    let _ = pipe.set_nx_get(key, 1, 10_000).await;
                }
            })
            .await
        }
        other => anyhow::bail!("unknown mode {other}: individual, pipeline or pipe"),
    };
    let (elapsed, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    println!(
        "{mode}: {:.0} commands/s, {:.2} µs of CPU per command",
        done as f64 / elapsed,
        cpu * 1e6 / done.max(1) as f64
    );
    Ok(())
}
