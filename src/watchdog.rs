//! The watchdog actor (`diem/watchdog`; in the tree only when a service
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;

use crate::node::Node;
use crate::owned_task::OwnedTask;
use crate::systemd;

/// How often `STATUS=` is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Messages of the watchdog.
#[derive(Debug, RactorMessage)]
pub(crate) enum WatchdogMsg {
    /// Time to check the tree (and ping systemd if it answers).
    Tick,
}

/// The watchdog actor.
#[derive(Debug)]
pub(crate) struct Watchdog {
    /// The node it watches.
    pub node: Arc<Node>,
}

/// The watchdog's state.
#[derive(Debug)]
pub(crate) struct WatchdogState {
    _ticker: OwnedTask,
    interval: Option<Duration>,
    status_at: Instant,
    failing: bool,
}

impl Watchdog {
    /// Whether the tree answers: the root supervisor and a worker, each
    /// within `within`.
    async fn tree_answers(&self, within: Duration) -> Result<(), &'static str> {
        let root = self.node.root().ok_or("the tree is not started")?;
        match tokio::time::timeout(within, root.inspect()).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err("the root supervisor is gone"),
            Err(_) => return Err("the root supervisor does not answer"),
        }
        if !self.node.workers.ping(within).await {
            return Err("no request worker answers");
        }
        Ok(())
    }
}

impl Actor for Watchdog {
    type Msg = WatchdogMsg;
    type State = WatchdogState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<WatchdogMsg>,
        _: (),
    ) -> Result<WatchdogState, ActorProcessingErr> {
        let interval = systemd::watchdog_interval();
        let every = interval.unwrap_or(STATUS_EVERY).min(STATUS_EVERY);
        if let Some(interval) = interval {
            tracing::info!(interval = ?interval, "systemd watchdog on: pinging after each round trip through the tree");
        }
        let ticks = myself.clone();
        let ticker = OwnedTask::spawn(
            async move {
                let mut timer = tokio::time::interval(every);
                timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    timer.tick().await;
                    if ticks.send_message(WatchdogMsg::Tick).is_err() {
                        return;
                    }
                }
            },
            || {},
        );
        Ok(WatchdogState {
            _ticker: ticker,
            interval,
            status_at: Instant::now(),
            failing: false,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<WatchdogMsg>,
        msg: WatchdogMsg,
        state: &mut WatchdogState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WatchdogMsg::Tick => {
                if let Some(interval) = state.interval {
                    match self.tree_answers(interval).await {
                        Ok(()) => {
                            systemd::watchdog();
                            if state.failing {
                                tracing::info!("the tree answers again; watchdog pings resumed");
                                state.failing = false;
                            }
                        }
                        Err(why) => {
                            if !state.failing {
                                tracing::error!(
                                    why,
                                    "watchdog: not pinging systemd; it will restart diem if this lasts"
                                );
                                state.failing = true;
                            }
                        }
                    }
                }
                if state.status_at.elapsed() >= STATUS_EVERY {
                    systemd::status(&systemd::summary(&self.node));
                    state.status_at = Instant::now();
                }
            }
        }
        Ok(())
    }
}
