//! The watchdog (`diem/watchdog`, a task child; in the tree only when a service
//! manager listens, `NOTIFY_SOCKET`): the built-in analogue of Erlang's
//! `heart`.
//!
//! When systemd's watchdog is on (`WatchdogSec=`, which sets
//! `WATCHDOG_USEC`), every half of that period it makes a round trip
//! through the root supervisor (`inspect`: the root's mailbox must be
//! served) and through a request worker (a ping behind the requests queued
//! in its mailbox), and only if both answer within the period sends
//! `WATCHDOG=1`. A wedged tree, a worker pool that no longer answers or a
//! stalled event loop stops the pings, and systemd kills and restarts the
//! process within `WatchdogSec`. Every 10 s it also refreshes `STATUS=`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::ActorProcessingErr;
use supervisors::TaskResult;

use crate::node::Node;
use crate::systemd;

/// How often `STATUS=` is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Reads the watchdog's period from the environment and returns its loop.
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    let interval = systemd::watchdog_interval();
    if let Some(interval) = interval {
        tracing::info!(interval = ?interval, "systemd watchdog on: pinging after each round trip through the tree");
    }
    Ok(watch(node, interval))
}

/// Whether the tree answers: the root supervisor and a worker, each
/// within `within`.
async fn tree_answers(node: &Node, within: Duration) -> Result<(), &'static str> {
    let root = node.root().ok_or("the tree is not started")?;
    match tokio::time::timeout(within, root.inspect()).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err("the root supervisor is gone"),
        Err(_) => return Err("the root supervisor does not answer"),
    }
    if !node.workers.ping(within).await {
        return Err("no request worker answers");
    }
    Ok(())
}

async fn watch(node: Arc<Node>, interval: Option<Duration>) -> TaskResult {
    let every = interval.unwrap_or(STATUS_EVERY).min(STATUS_EVERY);
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_at = Instant::now();
    let mut failing = false;
    loop {
        timer.tick().await;
        if let Some(interval) = interval {
            match tree_answers(&node, interval).await {
                Ok(()) => {
                    systemd::watchdog();
                    if failing {
                        tracing::info!("the tree answers again; watchdog pings resumed");
                        failing = false;
                    }
                }
                Err(why) => {
                    if !failing {
                        tracing::error!(
                            why,
                            "watchdog: not pinging systemd; it will restart diem if this lasts"
                        );
                        failing = true;
                    }
                }
            }
        }
        if status_at.elapsed() >= STATUS_EVERY {
            systemd::status(&systemd::summary(&node));
            status_at = Instant::now();
        }
    }
}
