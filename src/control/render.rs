//! Human-readable output of `diem ctl` (`--json` prints the raw reply).
//!
//! `tree` is drawn like `pstree`, with each node's state, restarts and
//! uptime; colour (the state) only when stdout is a terminal.

use std::fmt::Write;

use serde_json::Value;

use crate::control::protocol::Command;

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

fn node_line(n: &Value, colour: bool) -> String {
    let state = n["state"].as_str().unwrap_or("?");
    let state = paint(
        state,
        match state {
            "running" => "32",
            "restarting" => "33",
            _ => "31",
        },
        colour,
    );
    let mut line = n["id"].as_str().unwrap_or("?").to_owned();
    if let Some(strategy) = n["strategy"].as_str() {
        let _ = write!(line, " [{strategy}");
        if let Some(size) = n["size"].as_u64() {
            let _ = write!(line, ", {size} running");
        }
        if let Some(q) = n["queue_depth"].as_u64() {
            let _ = write!(line, ", {q} in flight");
        }
        line.push(']');
    }
    let _ = write!(line, " {state}");
    if let Some(r) = n["restarts"].as_u64().filter(|r| *r > 0) {
        let _ = write!(line, " restarts={r}");
    }
    if let Some(up) = n["uptime_ms"].as_u64() {
        let _ = write!(line, " up {}", duration(up));
    }
    if let Some(exit) = n["last_exit"].as_str() {
        let _ = write!(line, " (last exit: {exit})");
    }
    line
}

fn draw(n: &Value, prefix: &str, out: &mut String, colour: bool) {
    let children = n["children"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, c) in children.iter().enumerate() {
        let last = i + 1 == children.len();
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

/// The text shown for an ok `reply` to `command`.
pub fn render(command: &Command, reply: &Value, colour: bool) -> String {
    let mut out = String::new();
    match command {
        Command::Tree => {
            let tree = &reply["tree"];
            let _ = writeln!(out, "{}", node_line(tree, colour));
            draw(tree, "", &mut out, colour);
        }
        Command::Help => {
            for c in reply["commands"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let _ = writeln!(
                    out,
                    "{:<10} {:<16} {:<7} {}",
                    c["cmd"].as_str().unwrap_or(""),
                    c["args"].as_str().unwrap_or(""),
                    c["kind"].as_str().unwrap_or(""),
                    c["description"].as_str().unwrap_or("")
                );
            }
        }
        Command::Ping => {
            let _ = writeln!(
                out,
                "diem {} on {} (pid {}), up {}",
                reply["version"].as_str().unwrap_or("?"),
                reply["node"].as_str().unwrap_or("?"),
                reply["pid"],
                duration(reply["uptime_ms"].as_u64().unwrap_or(0))
            );
        }
        _ => {
            // Everything else: the reply's fields, one per line.
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
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_tree() {
        let reply = serde_json::json!({"tree": {"id": "diem", "state": "running", "strategy": "one_for_one", "uptime_ms": 61000,
            "children": [
                {"id": "store", "state": "running", "strategy": "one_for_one", "children": [
                    {"id": "postgres", "state": "running", "restarts": 2, "children": []}]},
                {"id": "listener", "state": "restarting", "children": []}]}});
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
