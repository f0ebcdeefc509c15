//! Redis servers of a test's own, from Debian's `redis-server` and
//! `redis-sentinel`, on loopback ports of their own: a standalone one, a
//! Redis Cluster of three primaries and three replicas, and a primary with
//! a replica behind three Sentinels. Killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cluster::{free_port, which};
use super::server::eventually;

/// One `redis-server` (or `redis-sentinel`) process.
pub struct RedisProc {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// What `redis-cli` needs besides the port (`--tls` and its files).
    cli_args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl RedisProc {
    /// Starts `redis-server` on `port` with `args` (and no persistence).
    pub fn start(port: u16, args: &[&str]) -> RedisProc {
        let server = which("redis-server").expect("redis-server: apt-get install -y redis-server");
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(server)
            .current_dir(dir.path())
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        RedisProc {
            child: Some(child),
            port,
            cli_args: Vec::new(),
            _dir: dir,
        }
    }

    /// Starts `redis-server` speaking TLS only on `port` (certificates of
    /// `pki`: `node.crt`, valid for 127.0.0.1), with `args`.
    pub fn start_tls(port: u16, pki: &super::pki::Pki, args: &[&str]) -> RedisProc {
        let p = port.to_string();
        let (cert, key, ca) = (pki.path("node.crt"), pki.path("node.key"), pki.path("ca.pem"));
        let mut all = vec![
            "--port",
            "0",
            "--tls-port",
            &p,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
            "--tls-replication",
            "yes",
        ];
        all.extend_from_slice(args);
        let mut proc = RedisProc::start(port, &all);
        proc.cli_args = vec!["--tls".to_owned(), "--cacert".to_owned(), ca];
        proc
    }

    /// Starts `redis-server` on `port` that requires `password` of its
    /// clients and gives it to its primary (`masterauth`, for a replica, and
    /// for a primary that becomes one), with `args`.
    pub fn start_with_password(port: u16, password: &str, args: &[&str]) -> RedisProc {
        let mut all = vec!["--requirepass", password, "--masterauth", password];
        all.extend_from_slice(args);
        let mut proc = RedisProc::start(port, &all);
        proc.cli_args = vec![
            "--no-auth-warning".to_owned(),
            "-a".to_owned(),
            password.to_owned(),
        ];
        proc
    }

    /// Starts a Sentinel on `port` watching `master` as `mymaster`, with
    /// `down-after-milliseconds` 1000 and a quorum of 2 (over TLS only, with
    /// `pki`'s `node` certificate, if given; with `passwords`, the servers'
    /// password and the one the Sentinels require of their clients and of
    /// each other).
    pub fn sentinel(
        port: u16,
        master: u16,
        pki: Option<&super::pki::Pki>,
        passwords: Option<&Passwords>,
    ) -> RedisProc {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sentinel.conf");
        let auth = passwords.map_or_else(String::new, |p| {
            format!(
                "sentinel auth-pass mymaster {}\nrequirepass {}\nsentinel sentinel-pass {}\n",
                p.servers, p.sentinels, p.sentinels
            )
        });
        let listen = match pki {
            None => format!("port {port}\n"),
            Some(pki) => format!(
                "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
                 tls-auth-clients no\ntls-replication yes\n",
                pki.path("node.crt"),
                pki.path("node.key"),
                pki.path("ca.pem")
            ),
        };
        std::fs::write(
            &conf,
            format!(
                "bind 127.0.0.1\n{listen}sentinel monitor mymaster 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n\
                 sentinel parallel-syncs mymaster 1\n{auth}"
            ),
        )
        .unwrap();
        let server = which("redis-server").expect("redis-server: apt-get install -y redis-server");
        let child = Command::new(server)
            .current_dir(dir.path())
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut cli_args = Vec::new();
        if let Some(pki) = pki {
            cli_args.extend(["--tls".to_owned(), "--cacert".to_owned(), pki.path("ca.pem")]);
        }
        if let Some(p) = passwords {
            cli_args.extend([
                "--no-auth-warning".to_owned(),
                "-a".to_owned(),
                p.sentinels.clone(),
            ]);
        }
        RedisProc {
            child: Some(child),
            port,
            cli_args,
            _dir: dir,
        }
    }

    /// `redis-cli -p PORT ARGS` (over TLS if it speaks TLS): its output.
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_args)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Sends it `signal` (`STOP`: frozen, as a replica that lags; `CONT`:
    /// running again) with kill(1).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let sent = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(sent, "kill -{signal} {}", child.id());
        }
    }

    /// Kills it (SIGKILL): a primary's death.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-cli -p PORT ARGS`: its output ("" if it could not run).
pub fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Waits until it answers `PING`.
pub async fn answering(redis: &RedisProc) {
    eventually(Duration::from_secs(20), "a test Redis starts", || async {
        redis.cli(&["PING"]).contains("PONG").then_some(())
    })
    .await;
}

/// A Redis Cluster: three primaries, a replica each,
/// `cluster-node-timeout 2000`, `cluster-replica-validity-factor 0`.
pub struct RedisCluster {
    /// Every node, the primaries first (as `--cluster create` paired them).
    pub nodes: Vec<RedisProc>,
}

impl RedisCluster {
    /// Starts the six servers and makes them a cluster; returns once every
    /// node says `cluster_state:ok`.
    pub async fn start() -> RedisCluster {
        Self::start_with(None).await
    }

    /// The same, speaking TLS only (clients, replication and the cluster
    /// bus), with `pki`'s certificates.
    pub async fn start_tls(pki: &super::pki::Pki) -> RedisCluster {
        Self::start_with(Some(pki)).await
    }

    async fn start_with(pki: Option<&super::pki::Pki>) -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let (port, bus) = (free_port(), free_port());
            let bus = bus.to_string();
            let start = |args: &[&str]| match pki {
                Some(pki) => RedisProc::start_tls(port, pki, &[args, &["--tls-cluster", "yes"]].concat()),
                None => RedisProc::start(port, args),
            };
            nodes.push(start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus,
                // A replica fails over whatever the age of its data:
                // with the default (10), a replica of an idle primary
                // refused ("Disconnected from master for longer than
                // allowed") and the cluster stayed down.
                "--cluster-replica-validity-factor",
                "0",
            ]));
        }
        for n in &nodes {
            answering(n).await;
        }
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(&nodes[0].cli_args)
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes };
        for n in &cluster.nodes {
            eventually(Duration::from_secs(30), "the cluster is ok", || async {
                n.cli(&["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
                    .then_some(())
            })
            .await;
        }
        cluster
    }

    /// fred's URL of it: `redis-cluster://first?node=…&node=…`
    /// (`rediss-cluster://` over TLS).
    pub fn url(&self) -> String {
        let scheme = if self.nodes[0].cli_args.is_empty() {
            "redis"
        } else {
            "rediss"
        };
        let mut url = format!("{scheme}-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port));
        }
        url
    }

    /// The ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        let any = self
            .nodes
            .iter()
            .find(|n| n.child.is_some())
            .map_or(0, |n| n.port);
        cli(any, &["CLUSTER", "NODES"])
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|a| a.split('@').next()?.rsplit(':').next()?.parse().ok())
            .collect()
    }
}

/// A primary and its replica behind three Sentinels (`mymaster`, quorum 2,
/// `down-after-milliseconds 1000`).
pub struct RedisSentinels {
    /// The primary, then the replica.
    pub servers: Vec<RedisProc>,
    /// The three Sentinels.
    pub sentinels: Vec<RedisProc>,
    /// The passwords they require, if any.
    passwords: Option<Passwords>,
    /// Over TLS.
    tls: bool,
}

/// The passwords of a Sentinel set that requires them.
#[derive(Clone)]
pub struct Passwords {
    /// The primary's and the replica's (`requirepass`, `masterauth`).
    pub servers: String,
    /// The Sentinels' own (`requirepass`, `sentinel sentinel-pass`).
    pub sentinels: String,
}

impl RedisSentinels {
    /// Starts them; returns once every Sentinel knows the replica and the
    /// two other Sentinels (a failover needs both).
    pub async fn start() -> RedisSentinels {
        Self::start_with(None, None).await
    }

    /// The same, every server and Sentinel speaking TLS only.
    pub async fn start_tls(pki: &super::pki::Pki) -> RedisSentinels {
        Self::start_with(Some(pki), None).await
    }

    /// The same, the servers and the Sentinels each requiring a password
    /// of their own.
    pub async fn start_with_passwords(passwords: Passwords) -> RedisSentinels {
        Self::start_with(None, Some(passwords)).await
    }

    async fn start_with(pki: Option<&super::pki::Pki>, passwords: Option<Passwords>) -> RedisSentinels {
        let server = |args: &[&str]| {
            let port = free_port();
            match (pki, &passwords) {
                (Some(pki), _) => RedisProc::start_tls(port, pki, args),
                (None, Some(p)) => RedisProc::start_with_password(port, &p.servers, args),
                (None, None) => RedisProc::start(port, args),
            }
        };
        let primary = server(&[]);
        answering(&primary).await;
        let master = primary.port.to_string();
        let replica = server(&["--replicaof", "127.0.0.1", &master]);
        answering(&replica).await;
        let sentinels: Vec<RedisProc> = (0..3)
            .map(|_| RedisProc::sentinel(free_port(), primary.port, pki, passwords.as_ref()))
            .collect();
        for s in &sentinels {
            answering(s).await;
        }
        for s in &sentinels {
            eventually(
                Duration::from_secs(30),
                "the sentinels know each other and the replica",
                || async {
                    let others = s
                        .cli(&["SENTINEL", "SENTINELS", "mymaster"])
                        .matches("runid")
                        .count();
                    let replicas = s.cli(&["SENTINEL", "REPLICAS", "mymaster"]);
                    (others >= 2
                        && replicas.contains(&replica.port.to_string())
                        && !replicas.contains("s_down"))
                    .then_some(())
                },
            )
            .await;
        }
        RedisSentinels {
            servers: vec![primary, replica],
            sentinels,
            passwords,
            tls: pki.is_some(),
        }
    }

    /// fred's URL of it (`rediss-sentinel://` over TLS; with passwords, the
    /// servers' in the URL's user part, the Sentinels' as
    /// `sentinelPassword`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let (user, sentinel) = match &self.passwords {
            Some(p) => (
                format!(":{}@", p.servers),
                format!("&sentinelPassword={}", p.sentinels),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "{scheme}-sentinel://{user}127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}&sentinelServiceName=mymaster{sentinel}",
            self.sentinels[0].port, self.sentinels[1].port, self.sentinels[2].port
        )
    }

    /// The port of the primary the Sentinels name now.
    pub fn primary(&self) -> Option<u16> {
        let out = self.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
        out.lines().nth(1)?.trim().parse().ok()
    }
}
