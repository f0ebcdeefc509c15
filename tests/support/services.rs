//! The real PostgreSQL and Redis the tests run against, and per-test
//! isolation: each test gets its own schema and its own Redis key prefix.
//!
//! `DIEM_TEST_PG_URL` and `DIEM_TEST_REDIS_URL` override the defaults
//! (`postgres://postgres@127.0.0.1:5432/postgres`, `redis://127.0.0.1:6379`).
//! A service that does not answer fails the test with instructions; it is
//! never skipped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio_postgres::NoTls;

/// The PostgreSQL URL tests use.
pub fn pg_url() -> String {
    std::env::var("DIEM_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis URL tests use.
pub fn redis_url() -> String {
    std::env::var("DIEM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn host_port(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(default_port)),
        None => (host_port, default_port),
    };
    let host = if host == "localhost" { "127.0.0.1" } else { host };
    format!("{host}:{port}")
        .parse()
        .expect("a numeric host in the test URL")
}

/// PostgreSQL's address.
pub fn pg_addr() -> SocketAddr {
    host_port(&pg_url(), 5432)
}

/// Redis's address.
pub fn redis_addr() -> SocketAddr {
    host_port(&redis_url(), 6379)
}

/// `url` with its host and port replaced by `addr` (to go through a proxy).
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (format!("{a}@"), r),
        None => (String::new(), rest),
    };
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    format!("{scheme}://{auth}{addr}{path}")
}

/// A unique lower-case name with `prefix`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff)
}

/// A connection to the test database.
pub async fn pg() -> tokio_postgres::Client {
    let (client, conn) = match tokio_postgres::connect(&pg_url(), NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {} ({e}). Run scripts/test, which starts it, \
             or set DIEM_TEST_PG_URL.",
            pg_url()
        ),
    };
    tokio::spawn(conn);
    client
}

/// Drops a test schema (best effort; used from `Drop`, off the runtime).
pub fn drop_schema_blocking(schema: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            if let Ok(Ok((client, conn))) =
                tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(&pg_url(), NoTls)).await
            {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            }
        });
    })
    .join();
}

/// Number of sentences in `schema`.
pub async fn count(schema: &str) -> i64 {
    pg().await
        .query_one(&format!("SELECT count(*) FROM {schema}.sentences"), &[])
        .await
        .expect("count")
        .get(0)
}

/// One sentence of a test bundle: category, text, source.
pub type Line<'a> = (char, &'a str, &'a str);

/// Writes a sentences-bundle directory with these sentences (ids from 1,
/// uuids derived from the text) under `dir`; returns its path.
pub fn write_bundle(dir: &Path, sentences: &[Line<'_>]) -> PathBuf {
    let root = dir.join(unique("bundle_"));
    std::fs::create_dir_all(root.join("sentences")).expect("bundle dir");
    let mut files = serde_json::Map::new();
    for (i, (cat, text, from)) in sentences.iter().enumerate() {
        let entry = json!({
            "id": i + 1,
            "uuid": uuid_for(text).to_string(),
            "hitokoto": text,
            "type": cat.to_string(),
            "from": from,
            "from_who": null,
            "creator": "test",
            "creator_uid": 0,
            "reviewer": 0,
            "commit_from": "web",
            "created_at": "1468605909",
            "length": text.chars().count(),
        });
        files
            .entry(cat.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("array")
            .push(entry);
    }
    let mut index = Vec::new();
    for (key, entries) in &files {
        std::fs::write(root.join(format!("sentences/{key}.json")), entries.to_string()).expect("write");
        index.push(
            json!({ "name": key, "key": key, "path": format!("./sentences/{key}.json"), "timestamp": 0 }),
        );
    }
    std::fs::write(root.join("categories.json"), "[]").expect("write");
    std::fs::write(
        root.join("version.json"),
        json!({ "protocol_version": "1.0.0", "bundle_version": "test", "updated_at": 0,
                "categories": { "path": "./categories.json", "timestamp": 0 }, "sentences": index })
        .to_string(),
    )
    .expect("write");
    root
}

/// The uuid a test sentence gets (stable per text).
pub fn uuid_for(text: &str) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    bytes[..8].copy_from_slice(&h.to_be_bytes());
    bytes[8..].copy_from_slice(&h.rotate_left(29).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Runs `diem import DIR` into `schema`; returns (exit code, stdout, stderr).
/// (Async: a test's runtime also drives its fault proxies, so it must not
/// block on a child process.)
pub async fn import(schema: &str, dir: &Path) -> (i32, String, String) {
    import_with(schema, dir, &[]).await
}

/// Runs `diem import ARGS DIR` into `schema`.
pub async fn import_with(schema: &str, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"))
        .env_clear()
        .env("DIEM_POSTGRES__URL", pg_url())
        .env("DIEM_POSTGRES__SCHEMA", schema)
        .current_dir(dir.parent().unwrap_or(dir))
        .arg("import")
        .args(args)
        .arg(dir)
        .output()
        .await
        .expect("run diem import");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
