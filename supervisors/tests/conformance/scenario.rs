//! The scenario format of `tests/otp` (its README, §1).

use std::collections::HashMap;
use std::time::Duration;

use supervisors::{AutoShutdown, Restart, Shutdown, Strategy};

#[derive(Clone, Debug)]
pub struct SupDecl {
    pub name: String,
    pub strategy: Strategy,
    pub intensity: u32,
    pub period: Duration,
    pub auto_shutdown: AutoShutdown,
    pub parent: Option<String>,
    pub restart: Restart,
    pub shutdown: Shutdown,
    pub significant: bool,
}

#[derive(Clone, Debug)]
pub struct ChildDecl {
    pub name: String,
    pub restart: Restart,
    pub parent: String,
    pub shutdown: Shutdown,
    pub delay: Duration,
    pub trap: bool,
    pub significant: bool,
}

#[derive(Clone, Debug)]
pub enum Decl {
    Sup(SupDecl),
    Child(ChildDecl),
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub root: String,
    /// Declarations in file order (the start order within each parent).
    pub decls: Vec<Decl>,
    pub events: Vec<Vec<String>>,
}

impl Scenario {
    pub fn sup(&self, name: &str) -> Option<&SupDecl> {
        self.decls.iter().find_map(|d| match d {
            Decl::Sup(s) if s.name == name => Some(s),
            _ => None,
        })
    }

    pub fn is_sup(&self, name: &str) -> bool {
        self.sup(name).is_some()
    }
}

fn opts(tokens: &[String]) -> HashMap<String, String> {
    tokens
        .iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (t.clone(), "true".to_owned()),
        })
        .collect()
}

fn strategy(s: &str) -> Result<Strategy, String> {
    Ok(match s {
        "one_for_one" => Strategy::OneForOne,
        "one_for_all" => Strategy::OneForAll,
        "rest_for_one" => Strategy::RestForOne,
        "simple_one_for_one" => Strategy::Dynamic,
        other => return Err(format!("unknown strategy `{other}`")),
    })
}

pub fn restart(s: &str) -> Result<Restart, String> {
    Ok(match s {
        "permanent" => Restart::Permanent,
        "transient" => Restart::Transient,
        "temporary" => Restart::Temporary,
        other => return Err(format!("unknown restart type `{other}`")),
    })
}

fn shutdown(s: &str) -> Result<Shutdown, String> {
    Ok(match s {
        "brutal_kill" => Shutdown::BrutalKill,
        "infinity" => Shutdown::Infinity,
        ms => Shutdown::Timeout(Duration::from_millis(
            ms.parse().map_err(|_| format!("bad shutdown `{ms}`"))?,
        )),
    })
}

fn auto_shutdown(s: &str) -> Result<AutoShutdown, String> {
    Ok(match s {
        "never" => AutoShutdown::Never,
        "any_significant" => AutoShutdown::AnySignificant,
        "all_significant" => AutoShutdown::AllSignificant,
        other => return Err(format!("unknown auto_shutdown `{other}`")),
    })
}

fn num(o: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, String> {
    o.get(key)
        .map(|v| v.parse().map_err(|_| format!("bad {key}=`{v}`")))
        .unwrap_or(Ok(default))
}

/// Parses a `child` line's tokens after the keyword (also used by
/// `start_child`).
pub fn parse_child(tokens: &[String], default_parent: &str) -> Result<ChildDecl, String> {
    let [name, restart_type, rest @ ..] = tokens else {
        return Err(format!("child line too short: {tokens:?}"));
    };
    let o = opts(rest);
    Ok(ChildDecl {
        name: name.clone(),
        restart: restart(restart_type)?,
        parent: o
            .get("parent")
            .cloned()
            .unwrap_or_else(|| default_parent.to_owned()),
        shutdown: shutdown(o.get("shutdown").map_or("5000", String::as_str))?,
        delay: Duration::from_millis(num(&o, "delay", 0)?),
        trap: !o.contains_key("notrap"),
        significant: o.contains_key("significant"),
    })
}

pub fn parse(text: &str) -> Result<Scenario, String> {
    let lines: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect();
    let split = lines
        .iter()
        .position(|t| t[0] != "sup" && t[0] != "child")
        .unwrap_or(lines.len());
    let (decl_lines, events) = lines.split_at(split);
    if let Some(bad) = events.iter().find(|t| t[0] == "sup" || t[0] == "child") {
        return Err(format!("declaration after the first event: {bad:?}"));
    }
    let root = decl_lines
        .iter()
        .find(|t| t[0] == "sup")
        .and_then(|t| t.get(1))
        .cloned()
        .ok_or("no root supervisor")?;
    let mut decls = Vec::new();
    for t in decl_lines {
        if t[0] == "sup" {
            let [_, name, strat, rest @ ..] = t.as_slice() else {
                return Err(format!("sup line too short: {t:?}"));
            };
            let o = opts(rest);
            decls.push(Decl::Sup(SupDecl {
                name: name.clone(),
                strategy: strategy(strat)?,
                intensity: u32::try_from(num(&o, "intensity", 1)?).map_err(|e| e.to_string())?,
                period: Duration::from_secs(num(&o, "period", 5)?),
                auto_shutdown: auto_shutdown(o.get("auto_shutdown").map_or("never", String::as_str))?,
                parent: if *name == root {
                    None
                } else {
                    Some(o.get("parent").cloned().unwrap_or_else(|| root.clone()))
                },
                restart: restart(o.get("restart").map_or("permanent", String::as_str))?,
                shutdown: shutdown(o.get("shutdown").map_or("infinity", String::as_str))?,
                significant: o.contains_key("significant"),
            }));
        } else {
            decls.push(Decl::Child(parse_child(&t[1..], &root)?));
        }
    }
    Ok(Scenario {
        root,
        decls,
        events: events.to_vec(),
    })
}
