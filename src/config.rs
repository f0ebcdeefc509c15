//! Configuration: every key with its default, loaded in layers.
//!
//! Layers, later ones winning: the defaults below, the TOML file
//! (`--config PATH`, or `config/diem.toml` when it exists), then environment
//! variables `DIEM_<SECTION>__<KEY>` (for instance `DIEM_HTTP__ADDR`,
//! `DIEM_LIMITER__BURST`; see [`env`](mod@env)). [figment] does the layering;
//! [`Config::validate`] then checks what types cannot express (ranges,
//! relations between keys). Errors name the key one way (`workers.count`)
//! and where its value came from.
//!
//! Every duration is a [`Wait`], written with a unit (`"250ms"`, `"5s"`,
//! `"6m"`, via humantime) and bounded when it is read: from 1ms (0 for
//! `http.shutdown_delay`, 10ms for the cluster's, 1s for `limiter.period`)
//! to 365 days ([`LONGEST_WAIT`]). The keys they replaced (`*_ms`,
//! `*_secs`) are refused with a message naming the new key. Each section
//! lives in a file of its own with its keys, defaults and the checks that
//! only it needs.
//!
//! `config/diem.toml` in the repository documents every key; a test keeps it
//! equal to [`Config::default`].
//!
//! ```
//! use std::time::Duration;
//! use diem::config::Config;
//!
//! let config = Config::from_toml_str("[limiter]\nburst = 5\n[redis]\ncommand_timeout = \"100ms\"\n").unwrap();
//! assert_eq!(config.limiter.burst, 5);
//! assert_eq!(config.redis.command_timeout.get(), Duration::from_millis(100));
//! assert_eq!(config.http.addr.to_string(), "127.0.0.1:8080");
//! assert!(Config::from_toml_str("[limiter]\nburst = \"many\"\n").is_err());
//! let old = Config::from_toml_str("[redis]\ncommand_timeout_ms = 100\n").unwrap_err();
//! assert!(old.to_string().contains("redis.command_timeout"));
//! ```

mod admin;
mod cluster;
mod control;
pub mod env;
mod error;
mod http;
mod limiter;
pub mod load;
mod log;
mod node;
mod observer;
mod postgres;
mod redis;
mod runtime;
pub mod show;
mod value;
mod wait;
mod workers;

pub use admin::AdminConfig;
pub use cluster::ClusterConfig;
pub use control::ControlConfig;
pub use error::ConfigError;
pub use http::HttpConfig;
pub use limiter::{ClientHeader, LimiterConfig};
pub use log::{LogConfig, LogFormat};
pub use node::NodeConfig;
pub use observer::ObserverConfig;
pub use postgres::{split_tls_params, PostgresConfig, ReadMode, TlsParams};
pub use redis::{parse_url as parse_redis_url, RedisConfig};
pub use runtime::RuntimeConfig;
pub use value::{is_host_port, is_identifier, MIN_TOKEN_BYTES};
pub use wait::{Wait, LONGEST_WAIT};
pub use workers::WorkersConfig;

use serde::{Deserialize, Serialize};

/// The default config file, read when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/diem.toml";

/// The whole configuration of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeConfig,
    /// The HTTP listener.
    pub http: HttpConfig,
    /// The request workers.
    pub workers: WorkersConfig,
    /// PostgreSQL.
    pub postgres: PostgresConfig,
    /// Redis.
    pub redis: RedisConfig,
    /// The rate limiter.
    pub limiter: LimiterConfig,
    /// The write API.
    pub admin: AdminConfig,
    /// The control socket.
    pub control: ControlConfig,
    /// The cluster of diem nodes.
    pub cluster: ClusterConfig,
    /// What counts as trouble in an actor's load.
    pub observer: ObserverConfig,
    /// Logging.
    pub log: LogConfig,
    /// The tokio runtime.
    pub runtime: RuntimeConfig,
}

impl Config {
    /// Checks ranges and relations between keys, section by section (each
    /// beside its section); durations are bounded when they are read
    /// ([`Wait`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.workers.validate()?;
        self.limiter.validate()?;
        self.postgres.validate()?;
        self.redis.validate()?;
        self.admin.validate()?;
        self.http.validate()?;
        self.log.validate()?;
        self.control.validate()?;
        self.observer.validate()?;
        if self.cluster.enabled {
            self.cluster.validate(&self.node)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_documented_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut documented = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
        // The node name defaults to the host name, which the file cannot know.
        documented.node.name = NodeConfig::default().name;
        assert_eq!(documented, Config::default());
    }

    #[test]
    fn trusted_proxies_accept_a_list_or_a_comma_separated_string() {
        let c = Config::from_toml_str("[limiter]\ntrusted_proxies = \"10.0.0.0/8, 127.0.0.1\"").unwrap();
        assert_eq!(c.limiter.trusted_proxies.len(), 2);
        let c = Config::from_toml_str("[limiter]\ntrusted_proxies = [\"::1\"]").unwrap();
        assert_eq!(c.limiter.trusted_proxies[0].to_string(), "::1/128");
        let e = Config::from_toml_str("[limiter]\ntrusted_proxies = \"nope\"").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml_str("[workers]\ncount = 0").unwrap_err();
        assert!(e.to_string().contains("workers.count"), "{e}");
        let e = Config::from_toml_str("[limiter]\nburst = \"x\"").unwrap_err();
        assert!(e.to_string().contains("`limiter.burst`"), "{e}");
        assert!(!e.to_string().contains("default."), "{e}");
        let e = Config::from_toml_str("[limiter]\nbrust = 3").unwrap_err();
        assert!(e.to_string().contains("`limiter.brust`: no such key"), "{e}");
        let e = Config::from_toml_str("[postgres]\nschema = \"a;drop\"").unwrap_err();
        assert!(e.to_string().contains("postgres.schema"), "{e}");
        let e = Config::from_toml_str("[limiter]\nperiod = \"1500ms\"").unwrap_err();
        assert!(e.to_string().contains("limiter.period"), "{e}");
        let e = Config::from_toml_str("[redis]\ncommand_timeout = \"366days\"").unwrap_err();
        assert!(e.to_string().contains("redis.command_timeout"), "{e}");
        assert!(e.to_string().contains("at most 365 days"), "{e}");
        assert!(Config::from_toml_str("[redis]\ncommand_timeout = \"365days\"").is_ok());
        let e = Config::from_toml_str("[redis]\nwait_replicas = 1\nwait_timeout = \"250ms\"").unwrap_err();
        assert!(e.to_string().contains("redis.wait_timeout"), "{e}");
        assert!(
            e.to_string().contains("shorter than redis.command_timeout"),
            "{e}"
        );
        assert!(Config::from_toml_str("[redis]\nwait_replicas = 1\nwait_timeout = \"249ms\"").is_ok());
        let e = Config::from_toml_str("[redis]\nwait_replicas = -1").unwrap_err();
        assert!(e.to_string().contains("redis.wait_replicas"), "{e}");
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let e = Config::load(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
