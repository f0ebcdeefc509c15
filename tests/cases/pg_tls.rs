//! PostgreSQL over TLS (issue 29, its first part): a real PostgreSQL that
//! accepts TLS only (`hostssl` in its `pg_hba.conf`, `hostnossl` refused),
//! started by the test on a loopback port of its own with certificates of
//! a throwaway CA; `diem migrate`, `import` and `serve` reach it with
//! libpq's URL parameters, and every wrong setting is a clear error naming
//! `postgres.url`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::cluster::{free_port, which};
use crate::support::pki::Pki;
use crate::support::server::{eventually, Options, TestServer};

/// PostgreSQL's binaries (Debian's packages put them in a versioned
/// directory).
fn pg_bin(name: &str) -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("bin").join(name))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| panic!("{name} not found under /usr/lib/postgresql: apt-get install postgresql"))
}

/// setpriv's arguments to run as the `postgres` user (PostgreSQL refuses
/// to run as root).
const AS_POSTGRES: [&str; 4] = [
    "--reuid=postgres",
    "--regid=postgres",
    "--init-groups",
    "--reset-env",
];

/// A PostgreSQL that accepts TLS only, run as the `postgres` user.
struct TlsPostgres {
    child: Option<Child>,
    port: u16,
    pgdata: PathBuf,
    _data: tempfile::TempDir,
}

/// Runs `cmd` (as given: wrap it in setpriv for the `postgres` user) and
/// fails the test if it fails.
fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?}: {status}");
}

/// `setpriv … BIN` as the `postgres` user.
fn as_postgres(bin: &str) -> Command {
    let setpriv = which("setpriv").expect("setpriv (util-linux)");
    let mut cmd = Command::new(setpriv);
    cmd.args(AS_POSTGRES).arg(pg_bin(bin));
    cmd
}

impl TlsPostgres {
    /// A primary of its own (`initdb`), TLS only, replication allowed.
    async fn start(pki: &Pki) -> TlsPostgres {
        let (data, pgdata) = Self::data_dir();
        run(as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pgdata)
            .stdout(Stdio::null()));
        // The server's key must be the server user's and private.
        for file in ["server.crt", "server.key"] {
            std::fs::copy(pki.path(file), pgdata.join(file)).unwrap();
        }
        run(Command::new("chown")
            .args(["postgres:postgres", "server.crt", "server.key"])
            .current_dir(&pgdata));
        run(Command::new("chmod")
            .args(["600", "server.key"])
            .current_dir(&pgdata));
        std::fs::write(
            pgdata.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
             hostssl replication all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        Self::serve(data, pgdata).await
    }

    /// A hot standby of `primary` (`pg_basebackup -R`, streaming over TLS:
    /// its certificate and `pg_hba.conf` come with the copy).
    async fn standby_of(primary: &TlsPostgres) -> TlsPostgres {
        let (data, pgdata) = Self::data_dir();
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres sslmode=require",
            primary.port
        );
        run(as_postgres("pg_basebackup")
            .args(["-d", &conninfo, "-R", "-X", "stream", "-D"])
            .arg(&pgdata)
            .stdout(Stdio::null()));
        Self::serve(data, pgdata).await
    }

    fn data_dir() -> (tempfile::TempDir, PathBuf) {
        let data = tempfile::Builder::new().prefix("diem-pg-tls").tempdir().unwrap();
        run(Command::new("chown").args(["postgres:postgres"]).arg(data.path()));
        let pgdata = data.path().join("pgdata");
        (data, pgdata)
    }

    /// Starts the server of `pgdata` on a port of its own.
    async fn serve(data: tempfile::TempDir, pgdata: PathBuf) -> TlsPostgres {
        // setpriv execs PostgreSQL itself (runuser would stay its parent and
        // not pass a signal on), so the child is the server.
        let port = free_port();
        let child = as_postgres("postgres")
            .arg("-D")
            .arg(&pgdata)
            .args(["-p", &port.to_string(), "-k"])
            .arg(data.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "ssl=on",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=50",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pg = TlsPostgres {
            child: Some(child),
            port,
            pgdata,
            _data: data,
        };
        let ready = pg_bin("pg_isready");
        eventually(
            Duration::from_secs(30),
            "the TLS-only PostgreSQL starts",
            || async {
                Command::new(&ready)
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                    .stdout(Stdio::null())
                    .status()
                    .ok()
                    .filter(|s| s.success())
            },
        )
        .await;
        pg
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    /// Stops it at once (SIGQUIT: PostgreSQL's immediate shutdown, as a
    /// crash leaves it).
    fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Promotes a standby (`pg_ctl promote`, which waits for it).
    fn promote(&self) {
        run(as_postgres("pg_ctl")
            .args(["promote", "-w", "-D"])
            .arg(&self.pgdata)
            .stdout(Stdio::null()));
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// `diem migrate` with `url` as `postgres.url`.
async fn migrate(url: &str, schema: &str) -> (i32, String) {
    diem(url, schema, &["migrate"], None).await
}

/// `diem ARGS` with `url` as `postgres.url`; (exit code, stdout + stderr).
async fn diem(url: &str, schema: &str, args: &[&str], dir: Option<&Path>) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"));
    cmd.env_clear()
        .env("DIEM_POSTGRES__URL", url)
        .env("DIEM_POSTGRES__SCHEMA", schema)
        .env("DIEM_POSTGRES__CONNECT_TIMEOUT", "3s")
        .env("DIEM_LOG__FORMAT", "human")
        .args(args);
    if let Some(dir) = dir {
        cmd.arg(dir);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn postgres_over_tls_with_libpq_s_url_parameters_and_clear_errors() {
    let pki = Pki::new();
    let pg = TlsPostgres::start(&pki).await;
    let ca = pki.path("ca.pem");
    let schema = "diem_tls";

    // verify-full against our CA, by the name the certificate carries.
    let full = pg.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
    let (code, out) = migrate(&full, schema).await;
    assert_eq!(code, 0, "verify-full: {out}");

    // The server refuses plain TCP: disable cannot reach it, and says why.
    let (code, out) = migrate(&pg.url("127.0.0.1", "sslmode=disable"), schema).await;
    assert_ne!(code, 0);
    assert!(out.contains("no encryption") || out.contains("pg_hba"), "{out}");

    // require encrypts without verifying (libpq's rule).
    let (code, out) = migrate(&pg.url("127.0.0.1", "sslmode=require"), schema).await;
    assert_eq!(code, 0, "require: {out}");

    // A CA that did not sign the server's certificate: refused, said so.
    let other = pki.path("other-ca.pem");
    let (code, out) = migrate(
        &pg.url("localhost", &format!("sslmode=verify-full&sslrootcert={other}")),
        schema,
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        out.to_lowercase().contains("unknownissuer") || out.contains("unknown issuer"),
        "{out}"
    );
    assert!(out.contains("postgres.url: TLS"), "the setting is named: {out}");

    // The name: 127.0.0.1 is not in the certificate. verify-full refuses,
    // verify-ca (the chain only) accepts.
    let (code, out) = migrate(
        &pg.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")),
        schema,
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        out.contains("NotValidForName") || out.contains("not valid for name"),
        "{out}"
    );
    let (code, out) = migrate(
        &pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        schema,
    )
    .await;
    assert_eq!(code, 0, "verify-ca: {out}");

    // Wrong settings are named before anything connects.
    for (params, says) in [
        ("sslmode=verify-full", "sslrootcert"),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "/nonexistent/ca.pem",
        ),
        ("sslmode=sometimes", "sslmode"),
    ] {
        let (code, out) = diem(&pg.url("localhost", params), schema, &["config", "check"], None).await;
        assert_eq!(code, 2, "{params}: {out}");
        assert!(
            out.contains("postgres.url") && out.contains(says),
            "{params}: {out}"
        );
    }

    // `config check --connect` tries the store as configured, TLS included.
    let (code, out) = diem(&full, schema, &["config", "check", "--connect"], None).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("postgres: ok: PostgreSQL") && out.contains("sslmode verify-full"),
        "{out}"
    );
    let (code, out) = diem(
        &pg.url("localhost", &format!("sslmode=verify-full&sslrootcert={other}")),
        schema,
        &["config", "check", "--connect"],
        None,
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("postgres: FAILED") && out.contains("postgres.url: TLS"),
        "{out}"
    );

    // import, then serve: reads from the imported rows, a write over TLS.
    let bundle = tempfile::tempdir().unwrap();
    let bundle = crate::support::services::write_bundle(
        bundle.path(),
        &[('k', "over TLS all the way", "the pg_tls test")],
    );
    let (code, out) = diem(&full, schema, &["import"], Some(&bundle)).await;
    assert_eq!(code, 0, "import: {out}");
    const TOKEN: &str = "pg-tls-token-0123456789";
    let s = TestServer::start(Options {
        pg_url: Some(full.clone()),
        schema: Some(schema.to_owned()),
        ..Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)
    })
    .await;
    eventually(
        Duration::from_secs(20),
        "the corpus comes from PostgreSQL over TLS",
        || async {
            let r = s.get("/hitokoto/v2/?c=k").await;
            (r.status == 200 && r.body.contains("over TLS all the way")).then_some(())
        },
    )
    .await;
    let written = s
        .post(
            TOKEN,
            r#"{"hitokoto":"written over TLS","from":"the pg_tls test"}"#,
        )
        .await;
    assert_eq!(written.status, 201, "{}", written.body);
    drop(s);

    // A node whose CA did not sign the server's certificate serves its
    // embedded corpus and says why in /readyz, in a few words.
    let wrong = TestServer::start(Options {
        pg_url: Some(pg.url("localhost", &format!("sslmode=verify-full&sslrootcert={other}"))),
        schema: Some(schema.to_owned()),
        ..Options::no_limit()
    })
    .await;
    let notes = eventually(
        Duration::from_secs(20),
        "readyz names the TLS refusal",
        || async {
            let r = wrong.get("/readyz").await;
            let notes = r.json()["notes"].to_string();
            notes.contains("TLS refused").then_some(notes)
        },
    )
    .await;
    assert!(
        notes.contains("unknown CA") && notes.contains("postgres.url"),
        "{notes}"
    );
    // The log names it too (written by the logging thread: waited for).
    eventually(
        Duration::from_secs(10),
        "the log names postgres.url's TLS",
        || async { wrong.logs().contains("postgres.url: TLS").then_some(()) },
    )
    .await;
}

/// A primary and its standby, both TLS only; `postgres.url` names both
/// (`target_session_attrs=read-write`, libpq's rule). The primary crashes
/// under load and the standby is promoted: reads never fail (the
/// snapshot), writes get 201 or 503 with `Retry-After` and never a 500,
/// come back without a restart, every acknowledged write is in the new
/// primary, and the LISTEN connection follows (a write made after the
/// failover on one node is seen on the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_takes_the_writes_over_tls_and_the_snapshot_follows() {
    use std::sync::{Arc, Mutex};
    let pki = Pki::new();
    let mut primary = TlsPostgres::start(&pki).await;
    let standby = TlsPostgres::standby_of(&primary).await;
    let ca = pki.path("ca.pem");
    let url = format!(
        "postgres://postgres@localhost:{},localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca}&target_session_attrs=read-write",
        primary.port, standby.port
    );
    let schema = "diem_failover";
    let bundle = tempfile::tempdir().unwrap();
    let bundle = crate::support::services::write_bundle(
        bundle.path(),
        &[('k', "before the failover", "the failover test")],
    );
    let (code, out) = diem(&url, schema, &["import"], Some(&bundle)).await;
    assert_eq!(code, 0, "import: {out}");
    const TOKEN: &str = "pg-failover-token-0123456789";
    let node = || async {
        let s = TestServer::start(Options {
            pg_url: Some(url.clone()),
            schema: Some(schema.to_owned()),
            ..Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)
        })
        .await;
        s.wait_ready(Duration::from_secs(20)).await;
        s
    };
    let (a, b) = (Arc::new(node().await), Arc::new(node().await));
    let server = |s: Arc<TestServer>| async move {
        s.ctl(serde_json::json!({"cmd": "stats"})).await["postgres"]["server"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        server(a.clone()).await,
        format!("127.0.0.1:{}", primary.port),
        "stats name the primary"
    );

    // Writes on a, reads on b, all along.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<(std::time::Instant, String)>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let (a, stop, acknowledged, refused) =
            (a.clone(), stop.clone(), acknowledged.clone(), refused.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let body = format!(r#"{{"hitokoto":"failover write {i}","from":"the failover test"}}"#);
                let r = a.post(TOKEN, &body).await;
                match r.status {
                    201 => acknowledged.lock().unwrap().push((
                        std::time::Instant::now(),
                        r.json()["uuid"].as_str().unwrap_or("").to_owned(),
                    )),
                    503 if !r.header("retry-after").is_empty() => {}
                    other => refused.lock().unwrap().push(format!("{other} {}", r.body)),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let reader = {
        let (b, stop) = (b.clone(), stop.clone());
        tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = b.get("/hitokoto/v2/").await;
                n += 1;
                if r.status != 200 {
                    failed.push(format!("{} {}", r.status, r.body));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (n, failed)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    primary.crash();
    tokio::time::sleep(Duration::from_millis(500)).await;
    standby.promote();
    let promoted = std::time::Instant::now();
    // Writes come back by themselves.
    let back = eventually(Duration::from_secs(20), "writes come back", || async {
        acknowledged
            .lock()
            .unwrap()
            .iter()
            .find(|(at, _)| *at > promoted)
            .map(|(at, _)| at.duration_since(promoted))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // The stats name the new primary.
    let promoted_server = format!("127.0.0.1:{}", standby.port);
    eventually(Duration::from_secs(10), "stats name the new primary", || async {
        (server(a.clone()).await == promoted_server).then_some(())
    })
    .await;
    writer.await.unwrap();
    let (reads, failed_reads) = reader.await.unwrap();
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused.is_empty(),
        "writes are 201 or 503 with Retry-After: {refused:?}"
    );
    assert!(failed_reads.is_empty(), "no read failed: {failed_reads:?}");

    // Every acknowledged write is in the new primary.
    let acknowledged: Vec<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .map(|(_, u)| u.clone())
        .collect();
    let (plain, tls) = diem::store::tls::PgTls::from_url(
        &standby.url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}")),
    )
    .unwrap();
    let (client, conn) = tokio_postgres::connect(&plain, tls.connector())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let stored: std::collections::HashSet<String> = client
        .query(&format!("select uuid::text from {schema}.sentences"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let missing: Vec<&String> = acknowledged.iter().filter(|u| !stored.contains(*u)).collect();
    // The LISTEN connection followed: a write made now on a is seen on b.
    let last = a
        .post(
            TOKEN,
            r#"{"hitokoto":"after the failover","from":"the failover test"}"#,
        )
        .await;
    assert_eq!(last.status, 201, "{}", last.body);
    let uuid = last.json()["uuid"].as_str().unwrap().to_owned();
    let seen_after = std::time::Instant::now();
    eventually(
        Duration::from_secs(5),
        "b sees a's write through LISTEN",
        || async { (b.get(&format!("/hitokoto/v2/{uuid}")).await.status == 200).then_some(()) },
    )
    .await;
    eprintln!(
        "postgres failover over TLS: writes back {back:?} after the promotion; {} writes acknowledged, {} reads, none failed; a write seen on the other node {:?} after it was made",
        acknowledged.len(),
        reads,
        seen_after.elapsed()
    );
    assert!(missing.is_empty(), "acknowledged writes missing: {missing:?}");
}
