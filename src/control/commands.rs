//! What each control command does. Reads (`help`, `ping`, `tree`,
//! `stats`) change nothing; changes (`restart`, `kill`, `scale`, `reload`,
//! `log-level`, `shutdown`) act on the tree through the supervisors' own
//! API, so the tree reacts exactly as to any other start, stop or crash.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::ActorRef;
use serde_json::{json, Value};
use supervisors::{
    resolve, snapshot, ChildInfo, ChildKind, ChildState, Strategy, SupervisorError, SupervisorRef, TreeNode,
};

use crate::api::ops::sample_gauges;
use crate::config::Config;
use crate::control::protocol::{self, Command, ProtoError, COMMANDS};
use crate::limiter::LimiterSettings;
use crate::metrics::{parse, quantile, rss_bytes};
use crate::node::Node;
use crate::store::postgres_pool::PgMsg;
use crate::tree::ROOT;

/// How long `kill` waits for the replacement to run.
const REPLACEMENT_WAIT: Duration = Duration::from_secs(5);

/// Runs one request line and returns the reply line.
pub async fn execute(node: &Arc<Node>, line: &str) -> String {
    match protocol::parse(line) {
        Err((id, e)) => protocol::error(id, &e),
        Ok((id, command)) => match run(node, command).await {
            Ok(fields) => protocol::ok(id, fields),
            Err(e) => protocol::error(id, &e),
        },
    }
}

fn failed(e: SupervisorError) -> ProtoError {
    match e {
        SupervisorError::NotFound(path) => ProtoError::new("not_found", format!("no node at `{path}`")),
        other => ProtoError::new("failed", other.to_string()),
    }
}

fn root(node: &Node) -> Result<SupervisorRef, ProtoError> {
    node.root()
        .cloned()
        .ok_or_else(|| ProtoError::new("unavailable", "the tree is not running"))
}

/// Runs a parsed command.
pub async fn run(node: &Arc<Node>, command: Command) -> Result<Value, ProtoError> {
    match command {
        Command::Help => Ok(json!({ "commands": COMMANDS })),
        Command::Ping => Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "node": node.config().node.name,
            "pid": std::process::id(),
            "uptime_ms": node.started_at.elapsed().as_millis() as u64,
        })),
        Command::Tree => tree(node).await,
        Command::Stats => stats(node).await,
        Command::Restart { path } => restart(node, &path).await,
        Command::Kill { path, reason } => kill(node, &path, reason).await,
        Command::Scale { pool, n } => scale(node, &pool, n).await,
        Command::Reload => reload(node).await,
        Command::LogLevel { filter } => {
            let log = node
                .log
                .as_ref()
                .ok_or_else(|| ProtoError::new("unsupported", "this process does not own its logging"))?;
            let previous = log.current();
            log.set(&filter)
                .map_err(|e| ProtoError::new("invalid_argument", e))?;
            tracing::info!(%filter, %previous, "log filter changed");
            Ok(json!({ "filter": filter, "previous": previous }))
        }
        Command::Shutdown { grace_secs } => {
            let grace = grace_secs.unwrap_or(node.config().http.shutdown_grace_secs);
            tracing::info!(grace_secs = grace, "shutdown requested over the control socket");
            node.request_shutdown(Some(grace));
            Ok(json!({ "shutting_down": true, "grace_secs": grace }))
        }
    }
}

fn pool_path() -> String {
    format!("{ROOT}/workers")
}

async fn tree(node: &Node) -> Result<Value, ProtoError> {
    let tree = snapshot(&root(node)?).await.map_err(failed)?;
    let mut value = serde_json::to_value(&tree).map_err(|e| ProtoError::new("failed", e.to_string()))?;
    fn annotate(v: &mut Value, node: &Node) {
        if v["path"] == pool_path().as_str() {
            v["queue_depth"] = json!(node.workers.in_flight());
            v["capacity"] = json!(node.workers.capacity());
        }
        if let Some(children) = v["children"].as_array_mut() {
            for c in children {
                annotate(c, node);
            }
        }
    }
    annotate(&mut value, node);
    Ok(json!({ "tree": value }))
}

fn restarts(node: &TreeNode, out: &mut BTreeMap<String, u64>) {
    out.insert(node.path.clone(), node.restarts);
    for c in &node.children {
        restarts(c, out);
    }
}

async fn stats(node: &Node) -> Result<Value, ProtoError> {
    sample_gauges(node);
    node.metrics.upkeep();
    let samples = parse(&node.metrics.render());
    let mut requests: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut decisions: BTreeMap<String, u64> = BTreeMap::new();
    let mut buckets: BTreeMap<String, BTreeMap<u64, f64>> = BTreeMap::new();
    for s in &samples {
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        match s.name.as_str() {
            "diem_http_requests_total" if s.value > 0.0 => {
                *requests
                    .entry(label("route"))
                    .or_default()
                    .entry(label("status"))
                    .or_default() += s.value as u64;
            }
            "diem_limiter_decisions_total" => {
                decisions.insert(
                    format!("{}_{}", label("backend"), label("result")),
                    s.value as u64,
                );
            }
            "diem_http_request_duration_seconds_bucket" => {
                let le: f64 = label("le").parse().unwrap_or(f64::INFINITY);
                // Keyed by le in nanoseconds so the map sorts numerically.
                let key = if le.is_infinite() {
                    u64::MAX
                } else {
                    (le * 1e9) as u64
                };
                for route in [label("route"), "all".to_owned()] {
                    *buckets.entry(route).or_default().entry(key).or_default() += s.value;
                }
            }
            _ => {}
        }
    }
    let mut latency = serde_json::Map::new();
    for (route, b) in &buckets {
        let cumulative: Vec<(f64, f64)> = b
            .iter()
            .map(|(&le, &count)| {
                (
                    if le == u64::MAX {
                        f64::INFINITY
                    } else {
                        le as f64 / 1e9
                    },
                    count,
                )
            })
            .collect();
        let ms = |q: f64| quantile(&cumulative, q).map(|s| (s * 1e6).round() / 1e3);
        let count = cumulative.last().map_or(0.0, |c| c.1);
        if count > 0.0 {
            latency.insert(
                route.clone(),
                json!({ "count": count as u64, "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999) }),
            );
        }
    }
    let mut per_child = BTreeMap::new();
    if let Ok(tree) = snapshot(&root(node)?).await {
        restarts(&tree, &mut per_child);
    }
    let settings = node.limiter.settings();
    Ok(json!({
        "uptime_ms": node.started_at.elapsed().as_millis() as u64,
        "requests": requests,
        "latency": latency,
        "limiter": {
            "enabled": settings.enabled,
            "backend": node.limiter.backend(),
            "params": settings.params,
            "decisions": decisions,
            "local_keys": node.limiter.local().len(),
        },
        "postgres": node.pg.status(),
        "corpus": node.corpus.status(),
        "workers": {
            "size": node.workers.size(),
            "desired": node.desired_workers.load(Ordering::Relaxed),
            "in_flight": node.workers.in_flight(),
            "capacity": node.workers.capacity(),
        },
        "http": { "connections_open": node.http.open_connections() },
        "restarts": per_child,
        "memory": { "rss_bytes": rss_bytes() },
    }))
}

async fn child(parent: &SupervisorRef, id: &str) -> Option<ChildInfo> {
    parent
        .which_children()
        .await
        .ok()?
        .into_iter()
        .find(|c| c.id == id)
}

fn incarnation(info: &ChildInfo) -> Value {
    json!({
        "actor": info.actor.as_ref().map(|a| a.get_id().to_string()),
        "incarnation": info.incarnation,
    })
}

async fn as_pool(cell: Option<ractor::ActorCell>) -> Option<SupervisorRef> {
    let sup = cell.and_then(SupervisorRef::from_cell)?;
    let info = sup.inspect().await.ok()?;
    (info.flags.strategy == Strategy::Dynamic).then_some(sup)
}

/// The pool's running instances, in start order.
async fn running(pool: &SupervisorRef) -> Result<Vec<ChildInfo>, ProtoError> {
    Ok(pool
        .inspect()
        .await
        .map_err(failed)?
        .children
        .into_iter()
        .filter(|c| c.actor.is_some())
        .collect())
}

/// Replaces every instance of a pool, one at a time: start the new one,
/// then stop the old one gracefully (its queued requests go to others).
async fn rolling(pool: &SupervisorRef) -> Result<usize, ProtoError> {
    let old: Vec<String> = running(pool).await?.into_iter().map(|c| c.id).collect();
    for id in &old {
        pool.start_instance(Arc::new(())).await.map_err(failed)?;
        pool.terminate_child(id).await.map_err(failed)?;
    }
    Ok(old.len())
}

async fn restart(node: &Node, path: &str) -> Result<Value, ProtoError> {
    let root = root(node)?;
    let found = resolve(&root, path).await.map_err(failed)?;
    let Some(parent) = found.parent else {
        return Err(ProtoError::new(
            "unsupported",
            "the root is the node itself: restart its children, or use shutdown and let the service manager start it",
        ));
    };
    if found.kind == ChildKind::Supervisor {
        if let Some(pool) = as_pool(found.cell.clone()).await {
            let replaced = rolling(&pool).await?;
            return Ok(json!({ "path": path, "rolling": true, "replaced": replaced }));
        }
    }
    let parent_is_pool = parent.inspect().await.map_err(failed)?.flags.strategy == Strategy::Dynamic;
    if parent_is_pool {
        let started = parent.start_instance(Arc::new(())).await.map_err(failed)?;
        parent.terminate_child(&found.id).await.map_err(failed)?;
        return Ok(json!({ "path": path, "replaced_by": format!("{}/{}", parent_path(path), started.id) }));
    }
    let before = child(&parent, &found.id).await;
    parent.terminate_child(&found.id).await.map_err(failed)?;
    parent.restart_child(&found.id).await.map_err(failed)?;
    let after = child(&parent, &found.id).await;
    Ok(json!({
        "path": path,
        "old": before.as_ref().map(incarnation),
        "new": after.as_ref().map(incarnation),
    }))
}

fn parent_path(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(p, _)| p)
}

async fn kill(node: &Node, path: &str, reason: Option<String>) -> Result<Value, ProtoError> {
    let root = root(node)?;
    let found = resolve(&root, path).await.map_err(failed)?;
    let Some(parent) = found.parent else {
        return Err(ProtoError::new(
            "unsupported",
            "killing the root would stop the node; use shutdown",
        ));
    };
    let Some(cell) = found.cell else {
        return Err(ProtoError::new(
            "not_running",
            format!("`{path}` has no running process"),
        ));
    };
    let before = child(&parent, &found.id).await;
    let old_id = cell.get_id();
    let shown_reason = reason.clone().unwrap_or_else(|| "killed".to_owned());
    let killed_at = Instant::now();
    match reason {
        None => cell.kill(),
        Some(r) => cell.stop(Some(r)),
    }
    let _ = cell.wait(Some(Duration::from_secs(10))).await;
    let deadline = Instant::now() + REPLACEMENT_WAIT;
    let (replaced_by, state) = loop {
        match child(&parent, &found.id).await {
            Some(info)
                if info.state == ChildState::Running
                    && info.actor.as_ref().map(|a| a.get_id()) != Some(old_id) =>
            {
                let mut new = incarnation(&info);
                // Kill to replacement running, as seen from here (an upper bound).
                new["recovery_us"] = json!(killed_at.elapsed().as_micros() as u64);
                break (Some(new), "running");
            }
            Some(info) if info.state == ChildState::Stopped => break (None, "stopped"),
            None if parent.count_children().await.is_err() => break (None, "its supervisor stopped"),
            None => break (None, "removed"),
            _ if Instant::now() >= deadline => break (None, "restarting"),
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    };
    let mut died = before.as_ref().map(incarnation).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut died {
        m.insert("reason".into(), Value::from(shown_reason));
    }
    Ok(json!({ "path": path, "died": died, "replaced_by": replaced_by, "state": state }))
}

/// Resizes the pool at `pool` to `n` instances.
pub async fn scale(node: &Node, pool: &str, n: usize) -> Result<Value, ProtoError> {
    let max = node.config().workers.max;
    if n == 0 || n > max {
        return Err(ProtoError::new(
            "invalid_argument",
            format!("`n` must be from 1 to workers.max ({max}), found {n}"),
        ));
    }
    let root = root(node)?;
    let found = resolve(&root, pool).await.map_err(failed)?;
    let sup = as_pool(found.cell)
        .await
        .ok_or_else(|| ProtoError::new("not_a_pool", format!("`{pool}` is not a dynamic pool")))?;
    if pool == pool_path() {
        node.desired_workers.store(n, Ordering::Relaxed);
    }
    let running = running(&sup).await?;
    let from = running.len();
    if n > from {
        for _ in from..n {
            sup.start_instance(Arc::new(())).await.map_err(failed)?;
        }
    } else {
        for c in running.iter().rev().take(from - n) {
            sup.terminate_child(&c.id).await.map_err(failed)?;
        }
    }
    tracing::info!(pool, from, to = n, "pool scaled");
    Ok(json!({ "pool": pool, "from": from, "to": n }))
}

/// Which keys a running node cannot apply by itself, and what restart
/// applies them; every other key is applied by `reload`.
fn restart_scope(key: &str) -> Option<&'static str> {
    match key {
        "http.addr"
        | "http.backlog"
        | "http.max_connections"
        | "runtime.worker_threads"
        | "log.format"
        | "node.name"
        | "control.socket"
        | "control.max_connections"
        | "limiter.local_max_keys" => Some("process"),
        "postgres.url"
        | "postgres.schema"
        | "postgres.connect_timeout_ms"
        | "postgres.statement_timeout_ms" => Some("diem/store"),
        "redis.url" | "redis.key_prefix" => Some("diem/limiter"),
        _ => None,
    }
}

fn flatten(config: &Config) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Ok(Value::Object(sections)) = serde_json::to_value(config) {
        for (section, keys) in sections {
            if let Value::Object(keys) = keys {
                for (key, value) in keys {
                    out.insert(format!("{section}.{key}"), value);
                }
            }
        }
    }
    out
}

async fn reload(node: &Node) -> Result<Value, ProtoError> {
    let new = Config::load(node.config_path.as_deref())
        .map_err(|e| ProtoError::new("invalid_config", format!("{e} (nothing was applied)")))?;
    let old = node.config();
    let (before, after) = (flatten(&old), flatten(&new));
    let changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let (mut applied, mut needs_restart) = (Vec::new(), Vec::new());
    for key in &changed {
        match restart_scope(key) {
            Some(scope) => needs_restart.push(json!({ "key": key, "restart": scope })),
            None => applied.push(key.clone()),
        }
    }
    let limiter = LimiterSettings::from(&new.limiter);
    if *node.limiter.settings().as_ref() != limiter {
        node.limiter.set_settings(limiter);
    }
    if old.log.filter != new.log.filter {
        if let Some(log) = &node.log {
            log.set(&new.log.filter)
                .map_err(|e| ProtoError::new("failed", e))?;
        }
    }
    if old.workers.queue_depth != new.workers.queue_depth {
        node.workers.set_queue_depth(new.workers.queue_depth);
    }
    if old.postgres.pool_size != new.postgres.pool_size {
        if let Ok(found) = resolve(&root(node)?, &format!("{ROOT}/store/postgres")).await {
            if let Some(cell) = found.cell {
                let pool: ActorRef<PgMsg> = cell.into();
                let _ = pool.send_message(PgMsg::Resize(new.postgres.pool_size));
            }
        }
    }
    let count_changed = old.workers.count != new.workers.count;
    let count = new.workers.count;
    node.set_config(new);
    if count_changed {
        scale(node, &pool_path(), count).await?;
    }
    tracing::info!(?changed, "config reloaded");
    Ok(json!({ "changed": changed, "applied": applied, "needs_restart": needs_restart }))
}
