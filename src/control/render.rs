//! Human-readable output of `diem ctl` (`--json` prints the raw reply).
//!
//! Each reply is read back into its type ([`reply`](super::reply)) and
//! drawn: `tree` like `pstree`, with each node's state, restarts and
//! uptime; `stats` as aligned sections. Colour (the state) only when asked
//! for: on a terminal, and not with `NO_COLOR` set.

use std::fmt::Write;

use serde::de::DeserializeOwned;
use serde_json::Value;
use supervisors::{ChildState, TreeNode};

use crate::control::protocol::Command;
use crate::control::reply::{HelpReply, PingReply, TopReply, TreeReply};
use crate::load::diagnose::{Diagnosis, Level};
use crate::stats::{LatencySummary, Stats};

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn paint(text: &str, colour: &str, on: bool) -> String {
    if on {
        format!("\x1b[{colour}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn node_line(n: &TreeNode, colour: bool) -> String {
    let state = paint(
        &n.state.to_string(),
        match n.state {
            ChildState::Running => "32",
            ChildState::Restarting => "33",
            ChildState::Stopped => "31",
        },
        colour,
    );
    let mut line = n.id.clone();
    if let Some(strategy) = n.strategy {
        let strategy = serde_json::to_value(strategy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(line, " [{strategy}");
        if let Some(size) = n.size {
            let _ = write!(line, ", {size} running");
        }
        if let Some(q) = n.annotations.get("queue_depth") {
            let _ = write!(line, ", {q} in flight");
        }
        line.push(']');
    }
    let _ = write!(line, " {state}");
    if n.restarts > 0 {
        let _ = write!(line, " restarts={}", n.restarts);
    }
    if let Some(up) = n.uptime_ms {
        let _ = write!(line, " up {}", duration(up));
    }
    if let Some(exit) = &n.last_exit {
        let _ = write!(line, " (last exit: {exit})");
    }
    line
}

fn draw(n: &TreeNode, prefix: &str, out: &mut String, colour: bool) {
    for (i, c) in n.children.iter().enumerate() {
        let last = i + 1 == n.children.len();
        let _ = writeln!(
            out,
            "{prefix}{}{}",
            if last { "└── " } else { "├── " },
            node_line(c, colour)
        );
        draw(
            c,
            &format!("{prefix}{}", if last { "    " } else { "│   " }),
            out,
            colour,
        );
    }
}

/// A tree drawn like `pstree`.
pub(crate) fn tree(tree: &TreeNode, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", node_line(tree, colour));
    draw(tree, "", &mut out, colour);
    out
}

/// The help table.
pub(crate) fn help(reply: &HelpReply) -> String {
    let mut out = String::new();
    for c in &reply.commands {
        let _ = writeln!(out, "{:<10} {:<24} {}", c.cmd, c.args, c.description);
    }
    out
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

/// `stats` as aligned sections.
pub(crate) fn stats(s: &Stats) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "uptime {}", duration(s.uptime_ms));
    let _ = writeln!(out, "\nrequests");
    for (route, statuses) in &s.requests {
        let counts: Vec<String> = statuses.iter().map(|(st, n)| format!("{st}: {n}")).collect();
        let _ = writeln!(out, "  {route:<10} {}", counts.join("  "));
    }
    let _ = writeln!(
        out,
        "\nlatency      {:>8} {:>9} {:>9} {:>9} {:>9}",
        "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms"
    );
    for (
        route,
        LatencySummary {
            count,
            p50_ms,
            p90_ms,
            p99_ms,
            p999_ms,
        },
    ) in &s.latency
    {
        let _ = writeln!(
            out,
            "  {route:<10} {count:>8} {:>9} {:>9} {:>9} {:>9}",
            ms(*p50_ms),
            ms(*p90_ms),
            ms(*p99_ms),
            ms(*p999_ms)
        );
    }
    let l = &s.limiter;
    let _ = writeln!(out, "\nlimiter");
    let _ = writeln!(out, "  {:<12} {}", "enabled", l.enabled);
    let _ = writeln!(out, "  {:<12} {}", "backend", l.backend.as_str());
    let _ = writeln!(
        out,
        "  {:<12} burst {}, {} per {} s",
        "limit", l.params.burst, l.params.count, l.params.period_secs
    );
    for (k, v) in &l.decisions {
        let _ = writeln!(out, "  {k:<12} {v}");
    }
    let _ = writeln!(out, "  {:<12} {}", "local keys", l.local_keys);
    let _ = writeln!(
        out,
        "  {:<12} {} keys, {} refusals answered",
        "deny cache", l.deny_cache_keys, l.cached_refusals
    );
    let r = &l.redis;
    let _ = writeln!(
        out,
        "  {:<12} {}{}{}",
        "redis",
        r.topology,
        if r.tls { ", TLS" } else { "" },
        if r.hot_path { ", hot-path connection" } else { "" }
    );
    if r.wait_replicas > 0 {
        let _ = writeln!(
            out,
            "  {:<12} {} replica(s) per decision; {} short",
            "redis wait", r.wait_replicas, r.wait_short
        );
    }
    if r.topology == "sentinel" {
        let _ = writeln!(
            out,
            "  {:<12} {} switch(es) of the primary followed",
            "sentinel", r.sentinel_switches
        );
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  {:<12} {e}", "redis error");
    }
    let p = &s.postgres;
    let _ = writeln!(out, "\npostgres");
    let _ = writeln!(out, "  {:<12} {}", "ready", p.ready);
    let _ = writeln!(
        out,
        "  {:<12} {} open, {} idle, {} waiting, max {}; {} shared read connections",
        "pool", p.size, p.available, p.waiting, p.max_size, p.read_connections
    );
    if let Some(server) = &p.server {
        let _ = writeln!(out, "  {:<12} {server}", "server");
    }
    if let Some(e) = &p.error {
        let _ = writeln!(out, "  {:<12} {e}", "error");
    }
    let c = &s.corpus;
    let source = serde_json::to_value(&c.source)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(out, "\ncorpus");
    let _ = writeln!(out, "  {:<12} {} sentences from {source}", "served", c.sentences);
    let _ = writeln!(out, "  {:<12} {}", "listening", c.listening);
    let _ = writeln!(
        out,
        "  {:<12} {} rows, {} whole loads",
        "read", c.rows_read, c.full_loads
    );
    let w = &s.workers;
    let _ = writeln!(out, "\nworkers");
    let _ = writeln!(out, "  {:<12} {} of {} wanted", "running", w.size, w.desired);
    let _ = writeln!(out, "  {:<12} {} of {}", "in flight", w.in_flight, w.capacity);
    let _ = writeln!(out, "\nhttp");
    let _ = writeln!(out, "  {:<12} {}", "connections", s.http.connections_open);
    let _ = writeln!(out, "\nrestarts");
    for (path, n) in s.restarts.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(out, "  {path:<24} {n}");
    }
    if s.restarts.values().all(|n| *n == 0) {
        let _ = writeln!(out, "  none");
    }
    let _ = writeln!(out, "\nmemory");
    if let Some(rss) = s.memory.rss_bytes {
        let _ = writeln!(out, "  {:<12} {:.1} MiB", "rss", rss as f64 / (1024.0 * 1024.0));
    }
    out
}

/// `top`: one line per actor, as etop.
pub(crate) fn top(r: &TopReply, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:<10} {:>13} {:>9} {:>11} {:>9} {:>8}  RUNNING",
        "ACTOR", "STATE", "MAILBOX/MAX", "MSGS/S", "P99 µs", "BUSY ms", "RESTARTS"
    );
    for a in &r.actors {
        let busy = if a.busy_ms > 0 {
            paint(&a.busy_ms.to_string(), "33", colour)
        } else {
            "0".to_owned()
        };
        let _ = writeln!(
            out,
            "{:<30} {:<10} {:>13} {:>9.1} {:>11} {:>9} {:>8}  {}",
            a.path,
            a.state,
            format!("{}/{}", a.mailbox, a.mailbox_max),
            a.messages_per_s,
            a.handle_p99_us
                .map_or_else(|| "-".to_owned(), |v| format!("≤{v}")),
            busy,
            a.restarts,
            a.running
        );
    }
    let _ = writeln!(
        out,
        "({} actors; the sampler cost {} µs of CPU in its last second)",
        r.actors.len(),
        r.sampler_cost_us_per_s
    );
    out
}

/// `diagnose`: the findings, worst first, and the level.
pub(crate) fn diagnosis(d: &Diagnosis, colour: bool) -> String {
    let label = |l: Level| match l {
        Level::Ok => paint("ok      ", "32", colour),
        Level::Warn => paint("WARN    ", "33", colour),
        Level::Critical => paint("CRITICAL", "31", colour),
    };
    let mut out = String::new();
    for f in &d.findings {
        let _ = writeln!(out, "{} {:<10} {}", label(f.level), f.area, f.detail);
    }
    let _ = writeln!(out, "\nlevel: {}", label(d.level).trim_end());
    out
}

fn typed<T: DeserializeOwned>(reply: &Value) -> Option<T> {
    serde_json::from_value(reply.clone()).ok()
}

/// The reply's fields, one per line (commands without a drawing of their
/// own).
fn fields(reply: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(map) = reply {
        for (k, v) in map.iter().filter(|(k, _)| *k != "ok" && *k != "id") {
            match v {
                Value::String(s) => {
                    let _ = writeln!(out, "{k}: {s}");
                }
                other => {
                    let _ = writeln!(out, "{k}: {other}");
                }
            }
        }
    }
    out
}

/// The members, as `ctl cluster` draws them.
fn members(reply: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<22} {:<8} {:>10} {:>9} {:>11}\n",
        "name", "addr", "state", "since", "rtt ms", "last heard"
    );
    for m in reply["members"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = m["name"].as_str().unwrap_or("?");
        let this = if m["this_node"] == true { " *" } else { "" };
        let _ = writeln!(
            out,
            "{:<16} {:<22} {:<8} {:>10} {:>9} {:>11}",
            format!("{name}{this}"),
            m["addr"].as_str().unwrap_or("?"),
            m["state"].as_str().unwrap_or("?"),
            duration(m["since_ms"].as_u64().unwrap_or(0)),
            m["rtt_ms"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
            m["last_heard_ms"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |ms| format!("{ms}ms ago")),
        );
    }
    if let Some(refused) = reply["no_session_with"].as_object().filter(|r| !r.is_empty()) {
        out.push_str("\nno session with:\n");
        for (addr, why) in refused {
            let _ = writeln!(out, "  {addr}: {}", why.as_str().unwrap_or("?"));
        }
    }
    if let Some(port) = reply["refused_at_cluster_port"].as_object() {
        let counts: Vec<String> = port
            .iter()
            .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
            .map(|(reason, n)| format!("{reason}={n}"))
            .collect();
        if !counts.is_empty() {
            let _ = writeln!(out, "\nrefused at the cluster port: {}", counts.join(" "));
        }
    }
    out
}

/// The text shown for an ok reply to `command` run with `--cluster`:
/// each member's answer under its name, or the rolling report.
pub(crate) fn cluster(command: &Command, reply: &Value, colour: bool) -> String {
    let mut out = String::new();
    if let Some(steps) = reply["rolling"].as_array() {
        for step in steps {
            let _ = writeln!(
                out,
                "{}: done, ready again after {} ms",
                step["node"].as_str().unwrap_or("?"),
                step["ready_after_ms"]
            );
        }
        if let Some(stop) = reply["stopped_at"].as_object() {
            let _ = writeln!(
                out,
                "{}: STOPPED: {}",
                stop.get("node").and_then(Value::as_str).unwrap_or("?"),
                stop.get("answer").map(|a| a["error"].clone()).unwrap_or_default()
            );
        }
        return out;
    }
    for (name, answer) in reply["nodes"].as_object().into_iter().flatten() {
        let _ = writeln!(out, "== {name}");
        match answer.get("error").and_then(Value::as_str) {
            Some(error) if answer.as_object().is_some_and(|o| o.len() == 1) => {
                let _ = writeln!(out, "unreachable: {error}");
            }
            _ => out.push_str(&render(command, answer, colour)),
        }
    }
    if let Some(totals) = reply.get("totals") {
        let _ = writeln!(out, "== totals\n{totals}");
    }
    out
}

/// The text shown for an ok `reply` to `command`.
/// An upgrade's reply in one line.
fn upgraded(reply: &Value) -> Option<String> {
    let (old, new, phases) = (&reply["old"], &reply["new"], &reply["phases"]);
    Some(format!(
        "upgraded: pid {} ({}) -> pid {} ({}) in {} ms (start {} ms, init {} ms, handover {} ms); pid {} drains and exits\n",
        old["pid"].as_u64()?,
        old["version"].as_str()?,
        new["pid"].as_u64()?,
        new["version"].as_str()?,
        reply["total_ms"].as_u64()?,
        phases["start_ms"].as_u64()?,
        phases["init_ms"].as_u64()?,
        phases["handover_ms"].as_u64()?,
        old["pid"].as_u64()?,
    ))
}

pub(crate) fn render(command: &Command, reply: &Value, colour: bool) -> String {
    let drawn = match command {
        Command::Tree => typed::<TreeReply>(reply).map(|r| tree(&r.tree, colour)),
        Command::Help => typed::<HelpReply>(reply).map(|r| help(&r)),
        Command::Stats => typed::<Stats>(reply).map(|s| stats(&s)),
        Command::Top { .. } => typed::<TopReply>(reply).map(|r| top(&r, colour)),
        Command::Diagnose => typed::<Diagnosis>(reply).map(|d| diagnosis(&d, colour)),
        Command::Cluster => Some(members(reply)),
        Command::Ping => typed::<PingReply>(reply).map(|p| {
            format!(
                "diem {} on {} (pid {}), up {}\n",
                p.version,
                p.node,
                p.pid,
                duration(p.uptime_ms)
            )
        }),
        Command::Upgrade { .. } => upgraded(reply),
        Command::Observe => reply["url"].as_str().map(|url| {
            format!(
                "{url}\n(a one-time login link, valid for {} s; it opens a 12 h session)\n",
                reply["expires_in_secs"].as_u64().unwrap_or_default()
            )
        }),
        _ => None,
    };
    drawn.unwrap_or_else(|| fields(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_tree() {
        let reply = serde_json::json!({"tree": {"path": "diem", "id": "diem", "actor": "0.1", "kind": "supervisor",
            "state": "running", "restarts": 0, "last_exit": null, "strategy": "one_for_one", "uptime_ms": 61000,
            "children": [
                {"path": "diem/store", "id": "store", "actor": "0.2", "kind": "supervisor", "state": "running",
                 "restarts": 0, "last_exit": null, "uptime_ms": null, "strategy": "one_for_one", "children": [
                    {"path": "diem/store/postgres", "id": "postgres", "actor": "0.3", "kind": "worker",
                     "state": "running", "restarts": 2, "last_exit": null, "uptime_ms": null, "children": []}]},
                {"path": "diem/listener", "id": "listener", "actor": null, "kind": "worker", "state": "restarting",
                 "restarts": 0, "last_exit": null, "uptime_ms": null, "children": []}]}});
        let text = render(&Command::Tree, &reply, false);
        assert_eq!(
            text,
            "diem [one_for_one] running up 1m01s\n\
             ├── store [one_for_one] running\n\
             │   └── postgres running restarts=2\n\
             └── listener restarting\n"
        );
    }
}
