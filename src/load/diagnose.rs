//! `diem ctl diagnose`: one report from two samples of the load sampler
//! (a second apart, so it answers within about a second) — the actors
//! under the most load, stuck handlers, mailboxes over the warning or
//! growing, restarts in the last minute, the stores, memory — each
//! finding with a level, and the worst level for scripts and probes (the
//! command's exit code: 0 ok, 1 warn, 2 critical).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::shared::ActorRow;
use crate::node::Node;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Information.
    #[default]
    Ok,
    /// Look at it.
    Warn,
    /// Act.
    Critical,
}

impl Level {
    /// The exit code of `diem ctl diagnose` for it.
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Warn => 1,
            Level::Critical => 2,
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// `load`, `stuck`, `mailbox`, `restarts`, `redis`, `postgres`,
    /// `readiness`, `memory`.
    pub area: String,
    /// What was found, in words, with its figures.
    pub detail: String,
}

/// The report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The worst level of the findings.
    pub level: Level,
    /// The findings, worst first.
    pub findings: Vec<Finding>,
    /// The five actors under the most load (messages per second).
    pub top: Vec<ActorRow>,
}

/// Waits (up to `within`) for the sampler's next rows after `first`.
async fn next_rows(node: &Node, first: &Arc<Vec<ActorRow>>, within: Duration) -> Arc<Vec<ActorRow>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let rows = node.load.rows();
        if !Arc::ptr_eq(&rows, first) || tokio::time::Instant::now() >= deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Diagnoses the node.
pub(crate) async fn diagnose(node: &Node) -> Diagnosis {
    let (stuck_after, mailbox_warn) =
        node.with_config(|c| (c.observer.stuck_after.get(), c.observer.mailbox_warn));
    let first = node.load.rows();
    // Trouble now and a second later: a handler stuck now is a finding
    // even if it returns meanwhile.
    let mut trouble = node.load.trouble().as_ref().clone();
    let second = next_rows(node, &first, Duration::from_millis(1_200)).await;
    for t in node.load.trouble().iter() {
        match trouble.iter_mut().find(|k| k.path == t.path && k.kind == t.kind) {
            Some(k) => *k = t.clone(),
            None => trouble.push(t.clone()),
        }
    }
    let mut findings = Vec::new();
    let mut push = |level, area: &str, detail: String| {
        findings.push(Finding {
            level,
            area: area.to_owned(),
            detail,
        })
    };
    for t in &trouble {
        if t.kind == "stuck" {
            let long = Duration::from_millis(t.busy_ms) >= stuck_after * 10;
            push(
                if long { Level::Critical } else { Level::Warn },
                "stuck",
                format!(
                    "{}: a {} handler has run {} ms (observer.stuck_after {stuck_after:?})",
                    t.path, t.message, t.busy_ms
                ),
            );
        } else {
            let long = t.mailbox >= mailbox_warn.saturating_mul(10);
            push(
                if long { Level::Critical } else { Level::Warn },
                "mailbox",
                format!(
                    "{}: {} messages waiting (observer.mailbox_warn {mailbox_warn})",
                    t.path, t.mailbox
                ),
            );
        }
    }
    for row in second.iter() {
        let before = first.iter().find(|r| r.path == row.path).map_or(0, |r| r.mailbox);
        if row.mailbox >= 10 && row.mailbox > before && row.mailbox <= mailbox_warn {
            push(
                Level::Warn,
                "mailbox",
                format!(
                    "{}: mailbox growing, {before} → {} in a second",
                    row.path, row.mailbox
                ),
            );
        }
    }
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let recent: Vec<_> = node
        .observer
        .since(0)
        .into_iter()
        .filter(|e| now_ms.saturating_sub(e.at_ms) <= 60_000)
        .collect();
    for e in recent.iter().filter(|e| e.kind == "gave_up") {
        push(
            Level::Critical,
            "restarts",
            format!(
                "{}: gave up (restart intensity exceeded) in the last minute",
                e.path.as_deref().unwrap_or("?")
            ),
        );
    }
    let mut restarted: Vec<(String, usize)> = Vec::new();
    for e in recent.iter().filter(|e| e.kind == "restarted") {
        let path = e.path.clone().unwrap_or_default();
        match restarted.iter_mut().find(|(p, _)| *p == path) {
            Some((_, n)) => *n += 1,
            None => restarted.push((path, 1)),
        }
    }
    for (path, n) in restarted {
        push(
            Level::Warn,
            "restarts",
            format!("{path}: restarted {n} time(s) in the last minute"),
        );
    }
    let ready = crate::health::readiness(node).await;
    for d in &ready.degraded {
        push(Level::Critical, "readiness", format!("not ready: {d}"));
    }
    for n in &ready.notes {
        let area = if n.starts_with("limiter") {
            "redis"
        } else {
            "postgres"
        };
        push(Level::Warn, area, n.clone());
    }
    if ready.ready && ready.notes.is_empty() {
        push(
            Level::Ok,
            "readiness",
            format!(
                "ready; limiter deciding in {}, corpus of {} sentences",
                node.limiter.backend().as_str(),
                node.corpus.status().sentences
            ),
        );
    }
    if let Some(rss) = crate::metrics::rss_bytes() {
        push(
            Level::Ok,
            "memory",
            format!("{} MiB resident", rss / (1024 * 1024)),
        );
    }
    let busiest: Vec<ActorRow> = second.iter().take(5).cloned().collect();
    if let Some(top) = busiest.first() {
        push(
            Level::Ok,
            "load",
            format!(
                "busiest: {} at {} messages/s (handler p99 {} µs)",
                top.path,
                top.messages_per_s,
                top.handle_p99_us.unwrap_or(0)
            ),
        );
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    Diagnosis {
        level: findings.iter().map(|f| f.level).max().unwrap_or_default(),
        findings,
        top: busiest,
    }
}
