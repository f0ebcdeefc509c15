//! Cluster-wide control commands: the same request on every member, at
//! once (`--cluster tree`, `stats`, `ping`, `limiter reset`) or one member
//! at a time (`--cluster reload`, `--cluster restart PATH`: rolling, each
//! member ready again before the next, stopping at the first failure).
//!
//! Every member is reached through its endpoint — this node's own
//! included — so a request runs the same way everywhere and is audited
//! where it runs, with the member it came from.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::remote;

/// A member's answer: its reply's fields, or why it gave none.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// The member's ok reply (without `ok` and `id`).
    Reply(Value),
    /// An error reply or a failed call.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl Answer {
    /// The member's reply, if it gave one.
    pub fn reply(&self) -> Option<&Value> {
        match self {
            Answer::Reply(v) => Some(v),
            Answer::Failed { .. } => None,
        }
    }
}

fn answer(line: Result<String, remote::RemoteError>) -> Answer {
    let Ok(line) = line else {
        return Answer::Failed {
            error: line.err().map(|e| e.to_string()).unwrap_or_default(),
        };
    };
    match serde_json::from_str::<Value>(&line) {
        Ok(Value::Object(mut fields)) if fields.get("ok") == Some(&Value::Bool(true)) => {
            fields.remove("ok");
            fields.remove("id");
            Answer::Reply(Value::Object(fields))
        }
        Ok(v) => Answer::Failed {
            error: format!(
                "{} ({})",
                v["error"]["message"].as_str().unwrap_or("error"),
                v["error"]["code"].as_str().unwrap_or("?")
            ),
        },
        Err(e) => Answer::Failed {
            error: format!("unreadable reply: {e}"),
        },
    }
}

/// Every member: this one and those connected now, in name order.
pub fn members(this: &str) -> Vec<String> {
    let mut all = remote::connected();
    all.push(this.to_owned());
    all.sort();
    all.dedup();
    all
}

/// `request` on every member at once; the answers by member.
pub async fn everywhere(
    this: &str,
    request: &Value,
    origin: &str,
    timeout: Duration,
) -> BTreeMap<String, Answer> {
    let calls = members(this).into_iter().map(|m| {
        let (line, origin) = (request.to_string(), origin.to_owned());
        async move {
            let r = remote::control(&m, line, origin, timeout).await;
            (m, answer(r))
        }
    });
    futures::future::join_all(calls).await.into_iter().collect()
}

/// One member's step of a rolling operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// The member.
    pub node: String,
    /// Its answer.
    pub answer: Answer,
    /// How long it took to be ready again after, ms.
    pub ready_after_ms: Option<u64>,
}

/// A rolling operation's report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rolling {
    /// The members done, in order.
    pub rolling: Vec<Step>,
    /// Where it stopped, if it did: the member and why.
    pub stopped_at: Option<Step>,
}

async fn ready(member: &str, origin: &str, within: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let line = serde_json::json!({ "cmd": "ready" }).to_string();
        let r = remote::control(member, line, origin.to_owned(), Duration::from_secs(5)).await;
        let last = match answer(r) {
            Answer::Reply(v) if v["ready"] == Value::Bool(true) => return Ok(started.elapsed()),
            Answer::Reply(v) => v["degraded"].to_string(),
            Answer::Failed { error } => error,
        };
        if started.elapsed() > within {
            return Err(format!("not ready within {within:?}: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `request` on one member at a time, in name order, each ready again
/// (within `ready_within`) before the next; stops at the first failure.
pub async fn rolling(
    this: &str,
    request: &Value,
    origin: &str,
    timeout: Duration,
    ready_within: Duration,
) -> Rolling {
    let mut done = Vec::new();
    for member in members(this) {
        let r = remote::control(&member, request.to_string(), origin.to_owned(), timeout).await;
        let answer = answer(r);
        if let Answer::Failed { .. } = answer {
            return Rolling {
                rolling: done,
                stopped_at: Some(Step {
                    node: member,
                    answer,
                    ready_after_ms: None,
                }),
            };
        }
        match ready(&member, origin, ready_within).await {
            Ok(after) => done.push(Step {
                node: member,
                answer,
                ready_after_ms: Some(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
            }),
            Err(error) => {
                return Rolling {
                    rolling: done,
                    stopped_at: Some(Step {
                        node: member,
                        answer: Answer::Failed { error },
                        ready_after_ms: None,
                    }),
                }
            }
        }
    }
    Rolling {
        rolling: done,
        stopped_at: None,
    }
}
