//! `reload`: re-read the config and apply what a running node can change.
//!
//! The new file is loaded with the same layers as at start (so keys set in
//! the environment still win) and validated as a whole: an invalid file
//! changes nothing. Changed keys are compared with the config *in effect*;
//! those a running node applies (limits, log filter, pool sizes, queue
//! depth) take effect at once, the others are reported with the restart
//! that would apply them — and stay reported on every later `reload` until
//! that restart, because the config in effect keeps their old values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use supervisors::resolve;

use crate::cluster::tls::ClusterTls;
use crate::config::{Config, ConfigError};
use crate::limiter::LimiterSettings;
use crate::node::Node;
use crate::store::tls::PgTls;
use crate::tree_paths::POOL;

/// A changed key that `reload` could not apply, and what restart would.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NeedsRestart {
    /// The key.
    pub key: String,
    /// `process`, or the path of the subtree to restart.
    pub restart: String,
}

/// `reload`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ReloadReply {
    /// Keys whose value changed.
    pub changed: Vec<String>,
    /// Keys applied live.
    pub applied: Vec<String>,
    /// Keys that need a restart.
    pub needs_restart: Vec<NeedsRestart>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    /// The new config is invalid.
    #[error("{0} (nothing was applied)")]
    Invalid(#[from] ConfigError),
    /// Applying a key failed.
    #[error("applying `{key}` failed: {reason}")]
    Apply {
        /// The key.
        key: &'static str,
        /// What went wrong.
        reason: String,
    },
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
        | "limiter.local_max_keys"
        // The tree is built with or without the cluster, its member name
        // and its TLS listener.
        | "cluster.enabled"
        | "cluster.name"
        | "cluster.tls_cert" => Some("process"),
        // Read when the node server starts (certificate files too: a
        // rotated certificate takes effect with `restart diem/cluster`).
        "cluster.listen"
        | "cluster.advertise"
        | "cluster.cookie"
        | "cluster.cookie_file"
        | "cluster.tls_key"
        | "cluster.tls_ca"
        | "cluster.tls_server_name" => Some("diem/cluster"),
        "postgres.url"
        | "postgres.schema"
        | "postgres.connect_timeout"
        | "postgres.statement_timeout"
        | "postgres.read_connections" => {
            Some("diem/store")
        }
        // Certificate files too: a rotated one takes effect with
        // `restart diem/limiter`.
        "redis.url"
        | "redis.key_prefix"
        | "redis.tls_ca"
        | "redis.tls_cert"
        | "redis.tls_key"
        | "redis.tls_verify_hostname"
        | "redis.wait_replicas"
        | "redis.wait_timeout" => Some("diem/limiter"),
        _ => None,
    }
}

/// `section.key` → value, for every key of `config`.
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

/// `new` with the keys in `keep` set back to their values in `old`.
fn keep_old(new: &Config, old: &Config, keep: &[String]) -> Config {
    let (Ok(mut new_v), Ok(old_v)) = (serde_json::to_value(new), serde_json::to_value(old)) else {
        return old.clone();
    };
    for key in keep {
        if let Some((section, name)) = key.split_once('.') {
            new_v[section][name] = old_v[section][name].clone();
        }
    }
    serde_json::from_value(new_v).unwrap_or_else(|_| old.clone())
}

/// Re-reads the config and applies what can change live.
pub(crate) async fn reload(node: &Node) -> Result<ReloadReply, ReloadError> {
    // systemd (Type=notify-reload or notify): RELOADING=1 now, READY=1 when
    // done, whatever the outcome (a refused config leaves the old one).
    crate::systemd::reloading();
    let outcome = apply(node).await;
    crate::systemd::ready(&crate::systemd::summary(node));
    outcome
}

async fn apply(node: &Node) -> Result<ReloadReply, ReloadError> {
    let new = Config::load(node.config_path.as_deref())?;
    ClusterTls::check(&new)?;
    PgTls::check(&new)?;
    crate::limiter::redis_tls::check(&new)?;
    let old = node.config();
    let (before, after) = (flatten(&old), flatten(&new));
    let changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut reply = ReloadReply {
        changed: changed.clone(),
        ..ReloadReply::default()
    };
    let mut unapplied = Vec::new();
    for key in &changed {
        match restart_scope(key) {
            Some(scope) => {
                reply.needs_restart.push(NeedsRestart {
                    key: key.clone(),
                    restart: scope.to_owned(),
                });
                unapplied.push(key.clone());
            }
            None => reply.applied.push(key.clone()),
        }
    }
    let effective = keep_old(&new, &old, &unapplied);
    if old.log.filter != effective.log.filter {
        if let Some(log) = &node.log {
            log.set(&effective.log.filter).map_err(|e| ReloadError::Apply {
                key: "log.filter",
                reason: e.to_string(),
            })?;
        }
    }
    let limiter = LimiterSettings::from(&effective.limiter);
    if *node.limiter.settings().as_ref() != limiter {
        node.limiter.set_settings(limiter);
    }
    if old.workers.queue_depth != effective.workers.queue_depth {
        node.workers.set_queue_depth(effective.workers.queue_depth);
    }
    if let Some(root) = node.root() {
        if old.postgres.pool_size != effective.postgres.pool_size {
            node.pg
                .resize(effective.postgres.pool_size)
                .map_err(|reason| ReloadError::Apply {
                    key: "postgres.pool_size",
                    reason: reason.to_owned(),
                })?;
        }
        if old.workers.count != effective.workers.count {
            let pool = resolve(root, POOL).await.ok().and_then(|r| r.supervisor());
            let result = match pool {
                Some(pool) => pool
                    .scale_to(effective.workers.count)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("the worker pool is not running".to_owned()),
            };
            result.map_err(|reason| ReloadError::Apply {
                key: "workers.count",
                reason,
            })?;
        }
    }
    node.set_config(effective);
    tracing::info!(?changed, "config reloaded");
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unapplied_keys_keep_their_value_in_effect() {
        let old = Config::default();
        let mut new = Config::default();
        new.http.backlog = 7;
        new.limiter.burst = 3;
        let effective = keep_old(&new, &old, &["http.backlog".to_owned()]);
        assert_eq!(effective.http.backlog, old.http.backlog);
        assert_eq!(effective.limiter.burst, 3);
    }
}
