//! Several diem nodes on loopback forming one cluster, and HAProxy (a real
//! one, Debian's package) in front of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::server::{eventually, Options, TestServer};
use super::services::{drop_schema_blocking, unique};

/// The cookie every test cluster shares.
pub const COOKIE: &str = "test-cluster-cookie-0123456789";

/// A loopback port a test will listen on later (the cluster listener and
/// the backends behind HAProxy need their ports known in advance).
///
/// It is taken *below* the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), where neither `bind(:0)` nor an
/// outgoing connection ever lands. A port from that range, released and
/// bound again later, could meanwhile be handed to another test's `:0`
/// listener or be the local port of one of the client connections the load
/// tests open by the thousand, and the node's `bind` then fails with
/// "Address already in use" (it did once in CI, on 127.0.0.1:43039). The
/// ports are handed out in turn from an offset drawn from the process id,
/// each one checked free with a bind when it is handed out.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    let (low, high) = *RANGE.get_or_init(fixed_port_range);
    let span = u32::from(high - low) + 1;
    let offset = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + ((offset + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..={high}");
}

/// The ports [`free_port`] hands out: those below the ephemeral range, from
/// 10000 up (or, where the ephemeral range starts too low, those above it).
fn fixed_port_range() -> (u16, u16) {
    const FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
    let text = std::fs::read_to_string(FILE).unwrap_or_else(|e| panic!("read {FILE}: {e}"));
    let bounds: Vec<u16> = text
        .split_whitespace()
        .map(|t| t.parse().unwrap_or_else(|e| panic!("{FILE}: {t:?}: {e}")))
        .collect();
    let [ephemeral_low, ephemeral_high] = bounds[..] else {
        panic!("{FILE}: expected two ports, read {text:?}");
    };
    if ephemeral_low > 11_000 {
        (10_000, ephemeral_low - 1)
    } else if ephemeral_high < 64_535 {
        (ephemeral_high + 1, u16::MAX)
    } else {
        panic!(
            "{FILE} is {ephemeral_low}-{ephemeral_high}: no room outside it for the \
             tests' fixed ports; narrow it (sysctl net.ipv4.ip_local_port_range)"
        );
    }
}

/// One node of a test cluster: its name and ports.
#[derive(Clone, Debug)]
pub struct Member {
    /// `cluster.name`.
    pub name: String,
    /// The cluster listener's port.
    pub cluster_port: u16,
    /// The HTTP port.
    pub http_port: u16,
}

/// The nodes of a test cluster, their shared schema and Redis prefix.
pub struct Plan {
    /// The members.
    pub members: Vec<Member>,
    /// The shared schema.
    pub schema: String,
    /// The shared Redis key prefix.
    pub prefix: String,
}

impl Plan {
    /// `n` members named `n1`…, each seeding from the previous one (so the
    /// last learns the first only through the others).
    pub fn new(n: usize) -> Plan {
        Plan {
            members: (1..=n)
                .map(|i| Member {
                    name: format!("n{i}"),
                    cluster_port: free_port(),
                    http_port: free_port(),
                })
                .collect(),
            schema: unique("t_"),
            prefix: format!("{}:", unique("c")),
        }
    }

    /// The options of member `i`, with `extra` on top.
    pub fn options(&self, i: usize, extra: Options) -> Options {
        let m = &self.members[i];
        let seed = if i == 0 { None } else { Some(&self.members[i - 1]) };
        let mut opts = Options {
            schema: Some(self.schema.clone()),
            ..extra
        };
        let mut env = vec![
            ("DIEM_HTTP__ADDR".to_owned(), format!("127.0.0.1:{}", m.http_port)),
            ("DIEM_NODE__NAME".to_owned(), m.name.clone()),
            ("DIEM_REDIS__KEY_PREFIX".to_owned(), self.prefix.clone()),
            ("DIEM_CLUSTER__ENABLED".to_owned(), "true".to_owned()),
            (
                "DIEM_CLUSTER__LISTEN".to_owned(),
                format!("127.0.0.1:{}", m.cluster_port),
            ),
            ("DIEM_CLUSTER__COOKIE".to_owned(), COOKIE.to_owned()),
        ];
        if let Some(seed) = seed {
            env.push((
                "DIEM_CLUSTER__SEEDS".to_owned(),
                format!("127.0.0.1:{}", seed.cluster_port),
            ));
        }
        // The test's own settings win (added last).
        env.append(&mut opts.env);
        opts.env = env;
        opts
    }

    /// A node that is not one of the members but tries to join through
    /// `n1` (its own name, cluster port and HTTP port; `extra` on top).
    pub fn outsider(&self, name: &str, extra: Options) -> Options {
        let mut opts = self.options(1, extra);
        opts.env.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "DIEM_CLUSTER__LISTEN" | "DIEM_NODE__NAME" | "DIEM_HTTP__ADDR"
            )
        });
        opts.env.extend([
            (
                "DIEM_CLUSTER__LISTEN".to_owned(),
                format!("127.0.0.1:{}", free_port()),
            ),
            ("DIEM_NODE__NAME".to_owned(), name.to_owned()),
            ("DIEM_HTTP__ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ]);
        opts
    }

    /// Starts member `i`.
    pub async fn start(&self, i: usize, extra: Options) -> TestServer {
        TestServer::start(self.options(i, extra)).await
    }

    /// Starts every member, and waits until each sees all the others up.
    pub async fn start_all(&self, extra: Options) -> Vec<TestServer> {
        let mut nodes = Vec::new();
        for i in 0..self.members.len() {
            nodes.push(self.start(i, extra.clone()).await);
        }
        for n in &nodes {
            wait_members(n, self.members.len() - 1, Duration::from_secs(20)).await;
        }
        nodes
    }
}

impl Drop for Plan {
    fn drop(&mut self) {
        drop_schema_blocking(self.schema.clone());
    }
}

/// The other members `s` sees, by name: their state.
pub async fn members(s: &TestServer) -> Vec<(String, String)> {
    let reply = s.ctl(json!({"cmd": "cluster"})).await;
    reply["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["this_node"] != true)
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("?").to_owned(),
                        m["state"].as_str().unwrap_or("?").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The state `s` sees `member` in ("absent" when unknown).
pub async fn state_of(s: &TestServer, member: &str) -> String {
    members(s)
        .await
        .into_iter()
        .find(|(n, _)| n == member)
        .map_or("absent".to_owned(), |(_, st)| st)
}

/// Waits until `s` sees `n` other members up and can reach them.
pub async fn wait_members(s: &TestServer, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    eventually(
        within,
        &format!("{n} members up (heartbeat membership)"),
        || async {
            let up = members(s).await.iter().filter(|(_, st)| st == "up").count();
            (up >= n).then_some(())
        },
    )
    .await;
    // Membership (heartbeats) can count a member up a moment before its
    // endpoint reaches this node's process group, which `cluster: true`
    // commands fan out over: wait for that too (a rolling restart once
    // skipped a member that had just joined). Checked apart: on a busy
    // host a late heartbeat makes a member `suspect` for a moment, and the
    // two need not hold at the same instant.
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    eventually(
        left,
        &format!("{n} members in the fan-out view (process group)"),
        || async {
            let fanout = s.ctl(json!({"cmd": "ping", "cluster": true})).await;
            let reachable = fanout["nodes"].as_object().map_or(0, |m| m.len());
            (reachable > n).then_some(())
        },
    )
    .await;
}

/// HAProxy in front of some HTTP backends, health-checking `/readyz`.
pub struct Haproxy {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy on a free loopback port, balancing over `backends`
    /// (name, port) round-robin, retrying failed GETs on another server.
    pub async fn start(backends: &[(String, u16)]) -> Haproxy {
        let haproxy = which("haproxy").unwrap_or_else(|| {
            panic!("haproxy is not installed: scripts/test installs it (apt-get install haproxy)")
        });
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let servers: String = backends
            .iter()
            .map(|(name, port)| format!("  server {name} 127.0.0.1:{port} check\n"))
            .collect();
        let config = format!(
            "global\n  maxconn 4096\n  stats socket {sock} mode 600 level admin\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
             \x20 retries 3\n  option redispatch 1\n  retry-on all-retryable-errors\n  option http-server-close\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n\
             \x20 default-server inter 200ms fall 2 rise 2\n{servers}",
            sock = dir.path().join("stats.sock").display(),
        );
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config).expect("haproxy.cfg");
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        eventually(Duration::from_secs(10), "haproxy listening", || async {
            tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
        })
        .await;
        Haproxy { child, addr, dir }
    }

    /// `show servers state` of the runtime API: server name → operational
    /// state (2 = up, 0 = down).
    pub async fn servers(&self) -> Vec<(String, u32)> {
        let Ok(mut s) = tokio::net::UnixStream::connect(self.dir.path().join("stats.sock")).await else {
            return Vec::new();
        };
        let _ = s.write_all(b"show servers state be\n").await;
        let mut lines = BufReader::new(s).lines();
        let mut out = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let f: Vec<&str> = line.split_whitespace().collect();
            // be_id be_name srv_id srv_name srv_addr srv_op_state ...
            if f.len() > 5 && f[1] == "be" {
                out.push((f[3].to_owned(), f[5].parse().unwrap_or(0)));
            }
        }
        out
    }

    /// Waits until HAProxy sees `server` up (`true`) or down.
    pub async fn wait_server(&self, server: &str, up: bool, within: Duration) {
        eventually(within, &format!("haproxy sees {server} up={up}"), || async {
            let state = self.servers().await.into_iter().find(|(n, _)| n == server)?.1;
            ((state == 2) == up).then_some(())
        })
        .await;
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// The requests `s` answered on `route` so far.
pub async fn answered(s: &TestServer) -> u64 {
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    stats["requests"]["hitokoto"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// A CA and a member certificate it signed (for the name `diem-cluster`,
/// server and client usage), as PEM files in a directory of their own.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    /// Generates them (`cluster-ca.crt`, `cluster.crt`, `cluster.key`).
    pub fn new() -> Certs {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut member = CertificateParams::new(vec!["diem-cluster".to_owned()]).unwrap();
        member.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = member.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster-ca.crt"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cluster.crt"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("cluster.key"), key.serialize_pem()).unwrap();
        Certs { dir }
    }

    /// The path of one of its files.
    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// The environment that turns cluster TLS on with these files.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("DIEM_CLUSTER__TLS_CERT", "cluster.crt"),
            ("DIEM_CLUSTER__TLS_KEY", "cluster.key"),
            ("DIEM_CLUSTER__TLS_CA", "cluster-ca.crt"),
        ]
        .map(|(k, f)| (k.to_owned(), self.path(f)))
        .to_vec()
    }
}
