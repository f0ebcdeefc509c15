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
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl TlsPostgres {
    async fn start(pki: &Pki) -> TlsPostgres {
        // setpriv execs PostgreSQL itself (runuser would stay its parent and
        // not pass a signal on), so the child is the server.
        let setpriv = which("setpriv").expect("setpriv (util-linux)");
        let data = tempfile::Builder::new().prefix("diem-pg-tls").tempdir().unwrap();
        let dir = data.path();
        let as_postgres = |cmd: &mut Command| {
            let status = cmd.status().unwrap();
            assert!(status.success(), "{cmd:?}: {status}");
        };
        as_postgres(Command::new("chown").args(["postgres:postgres"]).arg(dir));
        let pgdata = dir.join("pgdata");
        as_postgres(
            Command::new(&setpriv)
                .args(AS_POSTGRES)
                .arg(pg_bin("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&pgdata)
                .stdout(Stdio::null()),
        );
        // The server's key must be the server user's and private.
        for file in ["server.crt", "server.key"] {
            std::fs::copy(pki.path(file), pgdata.join(file)).unwrap();
        }
        as_postgres(
            Command::new("chown")
                .args(["postgres:postgres", "server.crt", "server.key"])
                .current_dir(&pgdata),
        );
        as_postgres(
            Command::new("chmod")
                .args(["600", "server.key"])
                .current_dir(&pgdata),
        );
        std::fs::write(
            pgdata.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(&setpriv)
            .args(AS_POSTGRES)
            .arg(pg_bin("postgres"))
            .arg("-D")
            .arg(&pgdata)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir)
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
            child,
            port,
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
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
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
