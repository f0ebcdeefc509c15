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
//! Durations are written with units (`"250ms"`, `"5s"`, `"6m"`, via
//! humantime). The keys they replaced (`*_ms`, `*_secs`) are refused with a
//! message naming the new key. Timeouts and intervals run from 1ms to 365
//! days ([`LONGEST_WAIT`]).
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
//! assert_eq!(config.redis.command_timeout, Duration::from_millis(100));
//! assert_eq!(config.http.addr.to_string(), "127.0.0.1:8080");
//! assert!(Config::from_toml_str("[limiter]\nburst = \"many\"\n").is_err());
//! let old = Config::from_toml_str("[redis]\ncommand_timeout_ms = 100\n").unwrap_err();
//! assert!(old.to_string().contains("redis.command_timeout"));
//! ```

pub mod env;
pub mod load;
pub mod show;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

use thiserror::Error;

/// The shortest admin token accepted: a guessable token is refused at start.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The longest timeout or interval a setting may hold (365 days). Timers add a
/// wait to the clock, whose arithmetic panics past its range; the code that
/// keeps a timer caps what it is given at this bound too.
pub const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The default config file, read when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/diem.toml";

/// A configuration that cannot be used, with the key and what was expected.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("config file {path}: {reason}")]
    File {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Values with the wrong type or unknown keys, one line each.
    #[error("invalid config: {}", .0.join("; "))]
    Load(Vec<String>),
    /// An environment variable that cannot be a config value.
    #[error("invalid config: `{key}` (from {variable}): {message}")]
    Env {
        /// The variable, e.g. `DIEM_WORKERS__COUNT`.
        variable: String,
        /// The key it sets, e.g. `workers.count`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value has the right type but is out of range.
    #[error("invalid config: `{key}`: {expected}")]
    Invalid {
        /// The dotted key, e.g. `workers.count`.
        key: &'static str,
        /// What was expected.
        expected: String,
    },
}

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
    /// Logging.
    pub log: LogConfig,
    /// The tokio runtime.
    pub runtime: RuntimeConfig,
}

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name in `ping`, logs and metrics (default: the host name).
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let name = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "diem".to_owned());
        Self { name }
    }
}

/// `[http]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Listen backlog.
    pub backlog: u32,
    /// Connections served at once; more wait in the backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, from the
    /// connection's opening or its previous request's end; also how long
    /// an idle keep-alive connection stays open
    /// (`src/http/head_deadline.rs`).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// On shutdown, how long the node goes on accepting and serving after
    /// `/readyz` turned 503, so that load balancers stop sending first.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// Time in-flight requests get to finish on shutdown.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// `/readyz` also fails while PostgreSQL or Redis is unreachable or the
    /// embedded corpus is served (off: those are shared dependencies, and a
    /// node still serves without them).
    pub strict_readiness: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            backlog: 1024,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            shutdown_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            strict_readiness: false,
        }
    }
}

/// `[workers]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Workers started (changeable live with `scale` or `reload`).
    pub count: usize,
    /// Upper bound for `count` and `scale`.
    pub max: usize,
    /// Requests admitted per worker; past `count * queue_depth` requests
    /// in flight, new ones get 503 at once.
    pub queue_depth: usize,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            count: 8,
            max: 256,
            queue_depth: 64,
        }
    }
}

/// Where reads of `GET /hitokoto/v2/` come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// The in-memory snapshot kept fresh from PostgreSQL (the default).
    Snapshot,
    /// One PostgreSQL query per request.
    Query,
}

/// `[postgres]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL.
    pub url: String,
    /// Schema holding diem's tables (created if missing).
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Time to connect or to wait for a pooled connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest time a statement may run.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Longest delay between two connection attempts while PostgreSQL is down.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Interval of the health check of the pool.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Where reads come from.
    pub reads: ReadMode,
    /// With `reads = "query"`: connections every read request shares
    /// (tokio-postgres pipelines the queries of concurrent requests on
    /// each); 0 takes a pooled connection per read instead.
    pub read_connections: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/diem".to_owned(),
            schema: "public".to_owned(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            retry_max: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
            reads: ReadMode::Snapshot,
            read_connections: 2,
        }
    }
}

impl PostgresConfig {
    /// The longest a query may take from the client's side: a connection,
    /// then the statement.
    pub fn query_deadline(&self) -> Duration {
        self.connect_timeout + self.statement_timeout
    }
}

/// `[redis]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL.
    pub url: String,
    /// Prefix of every key diem writes.
    pub key_prefix: String,
    /// Longest wait for a reply before the limiter falls back to local.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Interval of the health check while Redis is down.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "diem:".to_owned(),
            command_timeout: Duration::from_millis(250),
            health_interval: Duration::from_millis(500),
        }
    }
}

/// `[limiter]`: redis-cell's `CL.THROTTLE key burst count period`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimiterConfig {
    /// Whether `GET /hitokoto/v2/` is rate limited.
    pub enabled: bool,
    /// Requests allowed at once beyond the steady rate (`max_burst`).
    pub burst: u64,
    /// Requests per `period` (`count`).
    pub count: u64,
    /// The period of `count`, in whole seconds.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Peers whose forwarding header is believed (CIDRs; in the
    /// environment a comma-separated list).
    #[serde(deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// The header trusted proxies name the client in: `x-forwarded-for` or
    /// RFC 7239 `forwarded`.
    pub client_header: ClientHeader,
    /// IPv6 clients are limited by this many leading bits of their address
    /// (64: one subscriber's network).
    pub ipv6_prefix: u8,
    /// Most keys checked in one Redis round trip.
    pub max_batch: usize,
    /// Most client keys the local fallback remembers.
    pub local_max_keys: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            burst: 35,
            count: 36,
            period: Duration::from_secs(360),
            trusted_proxies: Vec::new(),
            client_header: ClientHeader::XForwardedFor,
            ipv6_prefix: 64,
            max_batch: 256,
            local_max_keys: 1_000_000,
        }
    }
}

/// `[admin]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token of `POST` and `DELETE` (at least 16 bytes), and a
    /// login of the admin listener; empty disables the write API. Trimmed
    /// (a value made from a file ends in a newline); whitespace inside is
    /// refused.
    pub token: String,
    /// The admin listener (the observer page, its event stream and its
    /// actions), `host:port`; empty turns it off. Every caller logs in —
    /// loopback included: with the token, or with the one-time link `diem
    /// ctl observe` prints. Off loopback (a wildcard included) a token is
    /// required.
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token: String::new(),
            addr: "127.0.0.1:8081".to_owned(),
        }
    }
}

impl AdminConfig {
    /// The admin listener's address; `None` when it is off (or invalid,
    /// which [`Config::validate`] refuses).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.addr.trim().parse().ok()
    }
}

/// `[control]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Socket path; empty means the default of [`ControlConfig::socket_path`].
    pub socket: PathBuf,
    /// Control connections served at once.
    pub max_connections: usize,
    /// A control connection idle this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long `upgrade` (and SIGUSR2) waits for the new process to be
    /// ready before stopping it, unless the command gives its own.
    #[serde(with = "humantime_serde")]
    pub upgrade_timeout: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::new(),
            max_connections: 64,
            idle_timeout: Duration::from_secs(30),
            upgrade_timeout: Duration::from_secs(60),
        }
    }
}

impl ControlConfig {
    /// The socket path in effect, absolute: `control.socket` when set (made
    /// absolute against the working directory), else
    /// `$RUNTIME_DIRECTORY/diem.sock` (systemd's `RuntimeDirectory=`), else
    /// `$XDG_RUNTIME_DIR/diem.sock`, else `/run/diem/diem.sock` for root and
    /// `$TMPDIR/diem-<uid>/diem.sock` for anyone else.
    pub fn socket_path(&self) -> PathBuf {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let path = if !self.socket.as_os_str().is_empty() {
            self.socket.clone()
        } else if let Some(dir) = var("RUNTIME_DIRECTORY") {
            // systemd may list several directories, separated by ':'.
            let first = dir
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            Path::new(&first).join("diem.sock")
        } else if let Some(dir) = var("XDG_RUNTIME_DIR") {
            dir.join("diem.sock")
        } else if rustix::process::geteuid().is_root() {
            PathBuf::from("/run/diem/diem.sock")
        } else {
            std::env::temp_dir()
                .join(format!("diem-{}", rustix::process::geteuid().as_raw()))
                .join("diem.sock")
        };
        std::path::absolute(&path).unwrap_or(path)
    }
}

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
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A member silent this long is `suspect`.
    #[serde(with = "humantime_serde")]
    pub suspect_after: Duration,
    /// A member silent this long is `down` and its session is closed.
    #[serde(with = "humantime_serde")]
    pub down_after: Duration,
    /// Longest pause between two attempts to reach a member.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// A member down this long and not among the seeds is forgotten.
    #[serde(with = "humantime_serde")]
    pub forget_after: Duration,
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
            heartbeat: Duration::from_millis(250),
            suspect_after: Duration::from_secs(1),
            down_after: Duration::from_secs(3),
            reconnect_max: Duration::from_secs(1),
            forget_after: Duration::from_secs(600),
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

fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Csv(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(v) => v,
        Raw::Csv(s) => s.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable (coloured on a terminal).
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter (`RUST_LOG` wins when set).
    pub filter: String,
    /// Line format.
    pub format: LogFormat,
    /// One line per request at target `diem::access`.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Human,
            access: true,
        }
    }
}

/// `[runtime]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads of the tokio runtime; 0 means one per core.
    pub worker_threads: usize,
}

fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    string_list(d)?
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an IP address or CIDR")))
        })
        .collect()
}

impl Config {
    /// Checks ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, expected: &str| {
            Err(ConfigError::Invalid {
                key,
                expected: expected.to_owned(),
            })
        };
        if self.workers.max == 0 || self.workers.max > 100_000 {
            return bad("workers.max", "a number from 1 to 100000");
        }
        if self.workers.count == 0 || self.workers.count > self.workers.max {
            return bad(
                "workers.count",
                &format!("a number from 1 to workers.max ({})", self.workers.max),
            );
        }
        if self.workers.queue_depth == 0 {
            return bad("workers.queue_depth", "a number of at least 1");
        }
        if self.limiter.count == 0 {
            return bad("limiter.count", "a number of at least 1");
        }
        let period = self.limiter.period;
        if period.subsec_nanos() != 0 || period.is_zero() || period > Duration::from_secs(366 * 24 * 3600) {
            return bad("limiter.period", "a whole number of seconds from 1s to one year");
        }
        if self.limiter.ipv6_prefix == 0 || self.limiter.ipv6_prefix > 128 {
            return bad("limiter.ipv6_prefix", "a prefix length from 1 to 128");
        }
        if self.limiter.burst > 1_000_000_000 {
            return bad("limiter.burst", "a number up to 1000000000");
        }
        if self.limiter.max_batch == 0 || self.limiter.max_batch > 10_000 {
            return bad("limiter.max_batch", "a number from 1 to 10000");
        }
        if self.limiter.local_max_keys == 0 {
            return bad("limiter.local_max_keys", "a number of at least 1");
        }
        if self.postgres.pool_size == 0 {
            return bad("postgres.pool_size", "a number of at least 1");
        }
        if !is_identifier(&self.postgres.schema) {
            return bad(
                "postgres.schema",
                "an identifier of lower-case letters, digits and `_`, starting with a letter or `_`",
            );
        }
        if let Err(e) = self.postgres.url.parse::<tokio_postgres::Config>() {
            return bad("postgres.url", &format!("a PostgreSQL URL ({e})"));
        }
        if let Err(e) = fred::types::config::Config::from_url(&self.redis.url) {
            return bad("redis.url", &format!("a Redis URL ({e})"));
        }
        if !self.admin.token.is_empty() && self.admin.token.len() < MIN_TOKEN_BYTES {
            return bad(
                "admin.token",
                &format!("at least {MIN_TOKEN_BYTES} bytes (or empty, which disables writes)"),
            );
        }
        if !self.admin.addr.trim().is_empty() {
            match self.admin.listen() {
                None => return bad("admin.addr", "host:port (e.g. 127.0.0.1:8081), or empty to turn the admin listener off"),
                Some(addr) if !addr.ip().is_loopback() && self.admin.token.is_empty() => {
                    return bad(
                        "admin.token",
                        &format!("a token of at least {MIN_TOKEN_BYTES} bytes: admin.addr {addr} is not a loopback address"),
                    )
                }
                Some(_) => {}
            }
        }
        if self.http.max_header_bytes < 8192 {
            return bad("http.max_header_bytes", "at least 8192");
        }
        if self.http.max_connections == 0 {
            return bad("http.max_connections", "a number of at least 1");
        }
        for (key, d) in [
            ("http.header_read_timeout", self.http.header_read_timeout),
            ("http.body_read_timeout", self.http.body_read_timeout),
            ("postgres.connect_timeout", self.postgres.connect_timeout),
            ("postgres.statement_timeout", self.postgres.statement_timeout),
            ("postgres.retry_max", self.postgres.retry_max),
            ("postgres.health_interval", self.postgres.health_interval),
            ("redis.command_timeout", self.redis.command_timeout),
            ("redis.health_interval", self.redis.health_interval),
            ("control.idle_timeout", self.control.idle_timeout),
            ("control.upgrade_timeout", self.control.upgrade_timeout),
        ] {
            if d < Duration::from_millis(1) {
                return bad(key, "a duration of at least 1ms");
            }
            if d > LONGEST_WAIT {
                return bad(key, "a duration of at most 365 days");
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return bad("log.filter", &format!("a tracing filter ({e})"));
        }
        if self.control.max_connections == 0 {
            return bad("control.max_connections", "a number of at least 1");
        }
        if self.cluster.enabled {
            let cookie = self.cluster.read_cookie()?;
            if cookie.len() < MIN_TOKEN_BYTES {
                return bad(
                    "cluster.cookie",
                    &format!("at least {MIN_TOKEN_BYTES} bytes when the cluster is enabled (or cluster.cookie_file)"),
                );
            }
            let name = self.cluster.member_name(&self.node);
            if name.is_empty() || name.contains(['@', ' ', '/']) {
                return bad("cluster.name", "a name without '@', '/' or spaces");
            }
            let advertised = self.cluster.advertised();
            match advertised.rsplit_once(':') {
                Some((host, _)) if is_host_port(&advertised) => {
                    if host == "0.0.0.0" || host == "[::]" || host == "::" {
                        return bad(
                            "cluster.advertise",
                            "the address members reach this node at (cluster.listen is a wildcard)",
                        );
                    }
                }
                _ => return bad("cluster.advertise", "host:port"),
            }
            self.cluster.tls_keys()?;
            if self.cluster.listen.port() == 0 {
                return bad("cluster.listen", "a fixed port (members reach it by its address)");
            }
            let advertised_port = advertised
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            if advertised_port != Some(self.cluster.listen.port()) {
                return bad(
                    "cluster.advertise",
                    "the port of cluster.listen (members dial the port it binds)",
                );
            }
            if let Some(seed) = self.cluster.seeds.iter().find(|s| !is_host_port(s)) {
                return bad("cluster.seeds", &format!("host:port entries, found `{seed}`"));
            }
            for (key, d) in [
                ("cluster.heartbeat", self.cluster.heartbeat),
                ("cluster.suspect_after", self.cluster.suspect_after),
                ("cluster.down_after", self.cluster.down_after),
                ("cluster.reconnect_max", self.cluster.reconnect_max),
            ] {
                if d < Duration::from_millis(10) {
                    return bad(key, "a duration of at least 10ms");
                }
            }
            if self.cluster.down_after <= self.cluster.suspect_after
                || self.cluster.suspect_after <= self.cluster.heartbeat
            {
                return bad("cluster.down_after", "heartbeat < suspect_after < down_after");
            }
        }
        Ok(())
    }
}

/// Which header trusted proxies name the client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// `host:port` with a name, an IPv4 address or a bracketed IPv6 address
/// (a bare `::1` is a host, not an address with a port).
///
/// ```
/// use diem::config::is_host_port;
/// assert!(is_host_port("db.example:5432") && is_host_port("[::1]:4369"));
/// assert!(!is_host_port("::1") && !is_host_port("host:0"));
/// ```
pub fn is_host_port(s: &str) -> bool {
    s.parse::<std::net::SocketAddr>().is_ok()
        || s.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty()
                && !h.contains([':', '[', ']', '/', ' ', '@'])
                && p.parse::<u16>().is_ok_and(|p| p > 0)
        })
}

/// Whether `s` is a plain SQL identifier we can interpolate unquoted.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 48
}

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let e = Config::load(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
