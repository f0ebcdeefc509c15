//! `[cluster]`: several nodes that know each other.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::node::NodeConfig;
use super::value::{invalid, is_host_port, string_list, MIN_TOKEN_BYTES};
use super::wait::Wait;

/// `[cluster]`: several nodes that know each other (ractor_cluster).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Whether this node joins a cluster (off: a single node, unchanged).
    pub enabled: bool,
    /// This node's name in the cluster, unique among its members (default:
    /// `node.name`).
    pub name: String,
    /// Address the cluster listener binds.
    pub listen: SocketAddr,
    /// Address other members reach this node at (default: `listen`, which
    /// must then not be a wildcard).
    pub advertise: String,
    /// Members to join through, `host:port` (DNS names are resolved again
    /// periodically, so a headless Service's name is a seed list).
    #[serde(deserialize_with = "string_list")]
    pub seeds: Vec<String>,
    /// The shared secret members authenticate each other with (at least
    /// 16 bytes); or `cookie_file`.
    pub cookie: String,
    /// A file holding the cookie (e.g. a mounted Kubernetes Secret).
    pub cookie_file: PathBuf,
    /// Interval of the heartbeats to every member.
    pub heartbeat: Wait<10>,
    /// A member silent this long is `suspect`.
    pub suspect_after: Wait<10>,
    /// A member silent this long is `down` and its session is closed.
    pub down_after: Wait<10>,
    /// Longest pause between two attempts to reach a member.
    pub reconnect_max: Wait<10>,
    /// A member down this long and not among the seeds is forgotten.
    pub forget_after: Wait<10>,
    /// This member's certificate chain (PEM): with `tls_key` and `tls_ca`,
    /// sessions between members use mutual TLS. Empty: plain TCP.
    pub tls_cert: PathBuf,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: PathBuf,
    /// The CA certificates (PEM) every member's certificate is checked
    /// against, both ways.
    pub tls_ca: PathBuf,
    /// The name (a DNS subject alternative name) every member's
    /// certificate carries.
    pub tls_server_name: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            name: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 4370)),
            advertise: String::new(),
            seeds: Vec::new(),
            cookie: String::new(),
            cookie_file: PathBuf::new(),
            heartbeat: Wait::from_millis(250),
            suspect_after: Wait::from_secs(1),
            down_after: Wait::from_secs(3),
            reconnect_max: Wait::from_secs(1),
            forget_after: Wait::from_secs(600),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_ca: PathBuf::new(),
            tls_server_name: "diem-cluster".to_owned(),
        }
    }
}

impl ClusterConfig {
    /// The member name: `cluster.name`, or `node.name` when empty.
    pub fn member_name(&self, node: &NodeConfig) -> String {
        if self.name.is_empty() {
            node.name.clone()
        } else {
            self.name.clone()
        }
    }

    /// The address other members reach this node at.
    pub fn advertised(&self) -> String {
        if self.advertise.is_empty() {
            self.listen.to_string()
        } else {
            self.advertise.clone()
        }
    }

    /// Whether sessions between members use TLS (`tls_cert` is set; a
    /// validated config then has `tls_key` and `tls_ca` too).
    pub fn uses_tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }

    /// Whether `tls_cert`, `tls_key` and `tls_ca` are all set or all empty;
    /// the key missing from a partial set otherwise. (Whether the files
    /// hold what they must is checked by their reader,
    /// `cluster::tls::ClusterTls::from_config`.)
    pub fn tls_keys(&self) -> Result<(), ConfigError> {
        let set = [&self.tls_cert, &self.tls_key, &self.tls_ca].map(|p| !p.as_os_str().is_empty());
        match set.iter().position(|s| !s) {
            Some(i) if set != [false; 3] => Err(ConfigError::Invalid {
                key: ["cluster.tls_cert", "cluster.tls_key", "cluster.tls_ca"][i],
                expected: "a PEM file: cluster.tls_cert, tls_key and tls_ca go together".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn validate(&self, node: &NodeConfig) -> Result<(), ConfigError> {
        if self.enabled {
            let cookie = self.read_cookie()?;
            if cookie.len() < MIN_TOKEN_BYTES {
                return invalid(
                "cluster.cookie",
                &format!("at least {MIN_TOKEN_BYTES} bytes when the cluster is enabled (or cluster.cookie_file)"),
            );
            }
            let name = self.member_name(node);
            if name.is_empty() || name.contains(['@', ' ', '/']) {
                return invalid("cluster.name", "a name without '@', '/' or spaces");
            }
            let advertised = self.advertised();
            match advertised.rsplit_once(':') {
                Some((host, _)) if is_host_port(&advertised) => {
                    if host == "0.0.0.0" || host == "[::]" || host == "::" {
                        return invalid(
                            "cluster.advertise",
                            "the address members reach this node at (cluster.listen is a wildcard)",
                        );
                    }
                }
                _ => return invalid("cluster.advertise", "host:port"),
            }
            self.tls_keys()?;
            if self.listen.port() == 0 {
                return invalid("cluster.listen", "a fixed port (members reach it by its address)");
            }
            let advertised_port = advertised
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            if advertised_port != Some(self.listen.port()) {
                return invalid(
                    "cluster.advertise",
                    "the port of cluster.listen (members dial the port it binds)",
                );
            }
            if let Some(seed) = self.seeds.iter().find(|s| !is_host_port(s)) {
                return invalid("cluster.seeds", &format!("host:port entries, found `{seed}`"));
            }
            if self.down_after <= self.suspect_after || self.suspect_after <= self.heartbeat {
                return invalid("cluster.down_after", "heartbeat < suspect_after < down_after");
            }
        }
        Ok(())
    }

    /// The cookie: `cookie`, or the trimmed content of `cookie_file`.
    pub fn read_cookie(&self) -> Result<String, ConfigError> {
        if !self.cookie.is_empty() {
            return Ok(self.cookie.clone());
        }
        if self.cookie_file.as_os_str().is_empty() {
            return Ok(String::new());
        }
        let cookie = std::fs::read_to_string(&self.cookie_file)
            .map(|c| c.trim().to_owned())
            .map_err(|e| ConfigError::Invalid {
                key: "cluster.cookie_file",
                expected: format!("a readable file ({}: {e})", self.cookie_file.display()),
            })?;
        if cookie.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                key: "cluster.cookie_file",
                expected: format!(
                    "a file holding one cookie without whitespace inside ({})",
                    self.cookie_file.display()
                ),
            });
        }
        Ok(cookie)
    }
}
