//! The load sampler (`diem/load`): reads every actor's load counters
//! ([`supervisors::ActorLoad`]) and publishes what they mean
//! ([`LoadShared`](super::shared::LoadShared)).
//!
//! Every 25 ms it looks for trouble: a handler running longer than
//! `observer.stuck_after` (reported once per message: a warning naming the
//! actor and the message's kind, an event on the observer page,
//! `diem_actor_stuck_total{actor}`), a mailbox longer than
//! `observer.mailbox_warn` (once until it is back under half of it;
//! `diem_actor_mailbox_warnings_total{actor}`). Every second it turns
//! two samples into rates — messages per second, the handler-time
//! quantiles of that second, the mailbox's maximum — publishes the rows
//! `ctl top` shows and adds a point to the five-minute history. Both read
//! atomics; the table's read lock is taken once per pass.
//!
//! Killing it loses nothing but the history's current second: the
//! counters are the actors', and the next incarnation starts sampling
//! them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use supervisors::{for_each_load, kind_name, quantile_us, Counted, BUCKETS};

use crate::load::shared::{ActorRow, Trouble};
use crate::node::Node;

/// How often handlers and mailboxes are looked at.
pub(crate) const TICK: Duration = Duration::from_millis(25);

/// Ticks per rates sample (one a second).
const TICKS_PER_SAMPLE: u32 = 40;

/// The sampler's messages.
#[derive(Debug, RactorMessage)]
pub(crate) enum SamplerMsg {
    /// Look (internal timer).
    Tick,
}

/// The load sampler.
#[derive(Debug)]
pub(crate) struct LoadSampler {
    pub(crate) node: Arc<Node>,
}

/// An actor's counters at the last sample.
#[derive(Debug)]
struct Prev {
    /// Which incarnation (its load's address): a new one counts from 0.
    load: usize,
    handled: u64,
    histogram: [u64; BUCKETS],
}

/// The sampler's state.
#[derive(Debug)]
pub(crate) struct SamplerState {
    me: Counted<SamplerMsg>,
    ticks: u32,
    last_sample: Instant,
    prev: HashMap<String, Prev>,
    /// Handlers reported stuck: the actor, and the message's number.
    stuck: HashMap<String, u64>,
    /// Mailboxes reported too long.
    crowded: HashSet<String>,
    /// Time spent sampling since the last rates sample.
    cost: Duration,
}

impl Actor for LoadSampler {
    type Msg = SamplerMsg;
    type State = SamplerState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SamplerMsg>,
        _: (),
    ) -> Result<SamplerState, ActorProcessingErr> {
        let me = Counted::of(myself);
        me.send_after(TICK, || SamplerMsg::Tick);
        Ok(SamplerState {
            me,
            ticks: 0,
            last_sample: Instant::now(),
            prev: HashMap::new(),
            stuck: HashMap::new(),
            crowded: HashSet::new(),
            cost: Duration::ZERO,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<SamplerMsg>,
        msg: SamplerMsg,
        state: &mut SamplerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SamplerMsg::Tick => {
                let began = Instant::now();
                self.look(state);
                state.ticks += 1;
                if state.ticks % TICKS_PER_SAMPLE == 0 {
                    self.sample(state);
                }
                state.cost += began.elapsed();
                state.me.send_after(TICK, || SamplerMsg::Tick);
            }
        }
        Ok(())
    }
}

impl LoadSampler {
    /// Reports the handlers that crossed `observer.stuck_after` and the
    /// mailboxes over `observer.mailbox_warn`; publishes the trouble now.
    fn look(&self, state: &mut SamplerState) {
        let (stuck_after, mailbox_warn) = self
            .node
            .with_config(|c| (c.observer.stuck_after.get(), c.observer.mailbox_warn));
        // What is wrong now; `new` marks what was not already reported.
        let mut trouble: Vec<Trouble> = Vec::new();
        let mut new: Vec<usize> = Vec::new();
        let now = Instant::now();
        for_each_load(|load| {
            let path = load.path();
            if let Some((busy, kind, number)) = load.observe(now) {
                if busy >= stuck_after {
                    if state.stuck.insert(path.to_owned(), number) != Some(number) {
                        new.push(trouble.len());
                    }
                    trouble.push(Trouble {
                        path: path.to_owned(),
                        kind: "stuck".into(),
                        message: kind_name(kind).to_owned(),
                        busy_ms: millis(busy),
                        mailbox: 0,
                    });
                }
            }
            let mailbox = load.mailbox();
            let crowded = state.crowded.contains(path);
            if mailbox > mailbox_warn || (crowded && mailbox > mailbox_warn / 2) {
                if !crowded {
                    new.push(trouble.len());
                }
                trouble.push(Trouble {
                    path: path.to_owned(),
                    kind: "mailbox".into(),
                    message: String::new(),
                    busy_ms: 0,
                    mailbox,
                });
            }
        });
        let now_in = |kind: &str, p: &str| trouble.iter().any(|t| t.kind == kind && t.path == p);
        state.stuck.retain(|p, _| now_in("stuck", p));
        state.crowded = trouble
            .iter()
            .filter(|t| t.kind == "mailbox")
            .map(|t| t.path.clone())
            .collect();
        for &i in &new {
            self.report(&trouble[i], stuck_after, mailbox_warn);
        }
        trouble.sort_by(|a, b| a.path.cmp(&b.path));
        self.node.load.publish_trouble(trouble);
    }

    /// Says it once: the log, the observer's events, the metrics.
    fn report(&self, t: &Trouble, stuck_after: Duration, mailbox_warn: u64) {
        if t.kind == "stuck" {
            tracing::warn!(
                actor = %t.path,
                handling = %t.message,
                running_ms = t.busy_ms,
                "actor stuck: a handler has run longer than observer.stuck_after ({stuck_after:?})"
            );
            self.node.observer.trouble(
                "stuck",
                &t.path,
                format!(
                    "a {} handler has run {} ms (observer.stuck_after {stuck_after:?})",
                    t.message, t.busy_ms
                ),
            );
            self.node.metrics.actor_stuck(&t.path);
        } else {
            tracing::warn!(
                actor = %t.path,
                mailbox = t.mailbox,
                "actor's mailbox over observer.mailbox_warn ({mailbox_warn})"
            );
            self.node.observer.trouble(
                "mailbox",
                &t.path,
                format!(
                    "{} messages waiting (observer.mailbox_warn {mailbox_warn})",
                    t.mailbox
                ),
            );
            self.node.metrics.actor_mailbox_warning(&t.path);
        }
    }

    /// Rates since the last sample: the rows of `ctl top`, a history point.
    fn sample(&self, state: &mut SamplerState) {
        let now = Instant::now();
        let secs = now.duration_since(state.last_sample).as_secs_f64().max(1e-3);
        state.last_sample = now;
        let mut rows: HashMap<String, (ActorRow, [u64; BUCKETS])> = HashMap::new();
        let mut seen = HashSet::new();
        for_each_load(|load| {
            let s = load.sample();
            load.reset_max();
            let path = load.path().to_owned();
            let address = std::ptr::from_ref(load) as usize;
            let (handled, histogram) = match state.prev.get(&path) {
                Some(p) if p.load == address => (
                    s.handled.saturating_sub(p.handled),
                    std::array::from_fn(|b| s.histogram[b].saturating_sub(p.histogram[b])),
                ),
                _ => (s.handled, s.histogram),
            };
            state.prev.insert(
                path.clone(),
                Prev {
                    load: address,
                    handled: s.handled,
                    histogram: s.histogram,
                },
            );
            seen.insert(path.clone());
            let (row, hist) = rows.entry(path.clone()).or_insert_with(|| {
                (
                    ActorRow {
                        path,
                        ..ActorRow::default()
                    },
                    [0; BUCKETS],
                )
            });
            row.mailbox += s.mailbox;
            row.mailbox_max = row.mailbox_max.max(s.mailbox_max);
            row.messages_per_s += handled as f64 / secs;
            row.handle_max_us = row.handle_max_us.max(s.handle_max_us);
            if let Some(busy) = s.busy {
                row.busy_ms = row.busy_ms.max(millis(busy));
                row.running = kind_name(s.kind).to_owned();
            }
            for b in 0..BUCKETS {
                hist[b] += histogram[b];
            }
        });
        state.prev.retain(|p, _| seen.contains(p));
        let mut rows: Vec<ActorRow> = rows
            .into_values()
            .map(|(mut row, hist)| {
                row.handle_p50_us = quantile_us(&hist, 0.5);
                row.handle_p99_us = quantile_us(&hist, 0.99);
                row.messages_per_s = (row.messages_per_s * 10.0).round() / 10.0;
                row
            })
            .collect();
        rows.sort_by(|a, b| {
            b.messages_per_s
                .total_cmp(&a.messages_per_s)
                .then_with(|| a.path.cmp(&b.path))
        });
        self.node.load.update_history(|h| {
            for row in &rows {
                let rate = u32::try_from(row.messages_per_s.round() as u64).unwrap_or(u32::MAX);
                h.push(
                    &row.path,
                    rate,
                    u32::try_from(row.mailbox_max).unwrap_or(u32::MAX),
                );
            }
            h.end_tick();
        });
        let cost = u64::try_from(std::mem::take(&mut state.cost).as_nanos()).unwrap_or(u64::MAX);
        self.node.load.publish_rows(rows, cost);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
