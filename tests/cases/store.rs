//! PostgreSQL: migrations, import, the embedded default and the switch-over,
//! writes (auth, durability, visibility on every node), reads per query.

use std::time::Duration;

use diem::store::migrations::MIGRATIONS;
use serde_json::json;

use crate::support::proxy::{FaultProxy, Mode};
use crate::support::server::{eventually, Options, TestServer};
use crate::support::services::{
    count, drop_schema_blocking, import, pg, pg_addr, pg_url, unique, uuid_for, via, write_bundle,
};

const TOKEN: &str = "s3cret-token-0123456789";

fn embedded_texts() -> Vec<String> {
    diem::store::embedded::sentences()
        .into_iter()
        .map(|s| s.hitokoto)
        .collect()
}

#[tokio::test]
async fn without_postgres_the_embedded_corpus_is_served_then_postgres_takes_over() {
    let proxy = FaultProxy::start(pg_addr()).await;
    proxy.set(Mode::Refuse);
    let s = TestServer::start(Options {
        pg_url: Some(via(&pg_url(), proxy.addr)),
        ..Options::default()
    })
    .await;
    // Serves at once, from the embedded corpus: ready (it can serve), with
    // the shared dependency's state in the body, in a few words only.
    let r = s.get("/hitokoto/v2/?encode=json").await;
    assert_eq!(r.status, 200);
    assert!(embedded_texts().contains(&r.json()["hitokoto"].as_str().unwrap().to_owned()));
    let r = eventually(Duration::from_secs(5), "postgres noted", || async {
        let r = s.get("/readyz").await;
        r.body.contains("postgres").then_some(r)
    })
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let notes = r.json()["notes"].to_string();
    assert!(
        notes.contains("corpus: serving the embedded default") && notes.contains("postgres: unreachable"),
        "{notes}"
    );
    assert!(
        !r.body.contains("refused") && !r.body.contains("os error"),
        "no raw error text: {}",
        r.body
    );
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert!(
        stats["postgres"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "details in stats: {stats}"
    );
    // Strict mode: the same node state fails readiness.
    let strict = TestServer::start(Options {
        pg_url: Some(via(&pg_url(), proxy.addr)),
        ..Options::default().env("DIEM_HTTP__STRICT_READINESS", true)
    })
    .await;
    let r = strict.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(
        r.json()["degraded"].to_string().contains("postgres"),
        "{}",
        r.body
    );
    drop(strict);

    // PostgreSQL appears (with sentences): diem switches over, no restart.
    let bundle = write_bundle(s.dir.path(), &[('a', "from-postgres", "pg")]);
    let (code, out, err) = import(&s.schema, &bundle).await;
    assert_eq!(code, 0, "{out}{err}");
    proxy.set(Mode::Pass);
    s.wait_ready(Duration::from_secs(15)).await;
    assert_eq!(s.get("/hitokoto/v2/").await.body, "from-postgres——「pg」");
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(
        tree["tree"]["children"][0]["restarts"], 0,
        "no restart needed: {tree}"
    );
}

#[tokio::test]
async fn import_is_idempotent_and_counts_what_changed() {
    let schema = unique("t_");
    let dir = tempfile::tempdir().unwrap();
    let lines = [('a', "one", "x"), ('b', "two", "y"), ('k', "three", "z")];
    let bundle = write_bundle(dir.path(), &lines);
    let (code, out, err) = import(&schema, &bundle).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 inserted, 0 updated, 0 unchanged"), "{out}");
    let (_, out, _) = import(&schema, &bundle).await;
    assert!(out.contains("0 inserted, 0 updated, 3 unchanged"), "{out}");
    // The same uuid with another source is an update; a new one an insert.
    let changed = write_bundle(
        dir.path(),
        &[
            ('a', "one", "x2"),
            ('b', "two", "y"),
            ('k', "three", "z"),
            ('c', "four", "w"),
        ],
    );
    let (_, out, _) = import(&schema, &changed).await;
    assert!(out.contains("1 inserted, 1 updated, 2 unchanged"), "{out}");
    assert_eq!(count(&schema).await, 4);
    let row = pg()
        .await
        .query_one(
            &format!("SELECT \"from\", length FROM {schema}.sentences WHERE uuid = $1"),
            &[&uuid_for("one")],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("x2".to_owned(), 3)
    );
    drop_schema_blocking(schema);
}

#[tokio::test]
async fn a_bad_bundle_is_rejected_whole_with_file_and_position() {
    let schema = unique("t_");
    let dir = tempfile::tempdir().unwrap();
    let good = write_bundle(dir.path(), &[('a', "kept", "x")]);
    assert_eq!(import(&schema, &good).await.0, 0);

    let bad = |edit: &dyn Fn(&std::path::Path)| {
        let b = write_bundle(dir.path(), &[('a', "new one", "x"), ('a', "another", "y")]);
        edit(&b);
        b
    };
    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            bad(&|b| std::fs::write(b.join("sentences/a.json"), "[{\"id\": 1,").unwrap()),
            "sentences/a.json: line 1 column",
        ),
        (
            bad(&|b| {
                let p = b.join("sentences/a.json");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("\"type\":\"a\"", "\"type\":\"q\"", 1);
                std::fs::write(p, t).unwrap()
            }),
            "sentences/a.json: entry 1 (id 1): `type` must be one of a to l",
        ),
        (
            bad(&|b| {
                let p = b.join("sentences/a.json");
                let t = std::fs::read_to_string(&p).unwrap();
                let u = uuid_for("another").to_string();
                std::fs::write(p, t.replacen(&u, "not-a-uuid", 1)).unwrap()
            }),
            "sentences/a.json: entry 2 (id 2): `uuid` is not a UUID",
        ),
        (
            bad(&|b| {
                let p = b.join("sentences/a.json");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(
                    p,
                    t.replacen("\"hitokoto\":\"another\"", "\"hitokoto\":\"  \"", 1),
                )
                .unwrap()
            }),
            "entry 2 (id 2): `hitokoto` is empty",
        ),
        (
            bad(&|b| {
                let p = b.join("version.json");
                let t = std::fs::read_to_string(&p).unwrap();
                std::fs::write(p, t.replace("./sentences/a.json", "../../etc/passwd")).unwrap()
            }),
            "leaves the bundle directory",
        ),
        (
            bad(&|b| std::fs::remove_file(b.join("sentences/a.json")).unwrap()),
            "cannot read",
        ),
        (
            bad(&|b| std::fs::write(b.join("version.json"), "{}").unwrap()),
            "version.json: line 1 column 2: missing field `sentences`",
        ),
    ];
    for (bundle, expected) in cases {
        let (code, out, err) = import(&schema, &bundle).await;
        assert_eq!(code, 1, "{expected}: {out}{err}");
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
        assert!(err.contains("nothing was written"), "{err}");
        assert_eq!(count(&schema).await, 1, "nothing written for {expected}");
    }
    drop_schema_blocking(schema);
}

#[tokio::test]
async fn writes_need_the_token_and_are_durable_and_visible_on_every_node() {
    let opts = Options::default()
        .env("DIEM_ADMIN__TOKEN", TOKEN)
        .env("DIEM_LIMITER__ENABLED", false);
    let a = TestServer::start_with(opts.clone(), &[('a', "seed", "x")]).await;
    let b = TestServer::start_ready(Options {
        schema: Some(a.schema.clone()),
        ..opts
    })
    .await;
    let body = json!({"hitokoto": "written through the API", "from": "test", "type": "l"}).to_string();

    let r = a.request("POST", "/hitokoto/v2/", &[], &body).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    let r = a
        .request(
            "POST",
            "/hitokoto/v2/",
            &[("authorization", "Bearer wrong")],
            &body,
        )
        .await;
    assert_eq!(r.status, 401);
    let auth = format!("Bearer {TOKEN}");
    let r = a
        .request(
            "POST",
            "/hitokoto/v2/",
            &[("authorization", &auth)],
            "{\"hitokoto\": 3}",
        )
        .await;
    // A type error names the field it is in (issue 27).
    assert_eq!(
        (r.status, r.json()["parameter"].as_str()),
        (400, Some("hitokoto"))
    );
    let r = a
        .request(
            "POST",
            "/hitokoto/v2/",
            &[("authorization", &auth)],
            &json!({"hitokoto": "x", "from": "y", "type": "z"}).to_string(),
        )
        .await;
    assert_eq!((r.status, r.json()["parameter"].as_str()), (400, Some("type")));

    let r = a
        .request("POST", "/hitokoto/v2/", &[("authorization", &auth)], &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    assert!(created["id"].as_i64().unwrap() >= 1_000_000_000);
    assert_eq!(r.header("location"), format!("/hitokoto/v2/{uuid}"));
    // Durable: in PostgreSQL once acknowledged.
    let n: i64 = pg()
        .await
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.sentences WHERE uuid = $1::text::uuid",
                a.schema
            ),
            &[&uuid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // Visible on both nodes within a second.
    for node in [&a, &b] {
        eventually(Duration::from_secs(1), "the new sentence is served", || async {
            (node.get("/hitokoto/v2/?c=l").await.body == "written through the API——「test」").then_some(())
        })
        .await;
    }
    // The same uuid again is a conflict, not a duplicate.
    let again = json!({"hitokoto": "dup", "from": "t", "uuid": uuid}).to_string();
    assert_eq!(
        a.request("POST", "/hitokoto/v2/", &[("authorization", &auth)], &again)
            .await
            .status,
        409
    );

    let path = format!("/hitokoto/v2/{uuid}");
    assert_eq!(b.request("DELETE", &path, &[], "").await.status, 401);
    assert_eq!(
        b.request("DELETE", &path, &[("authorization", &auth)], "")
            .await
            .status,
        204
    );
    assert_eq!(
        b.request("DELETE", &path, &[("authorization", &auth)], "")
            .await
            .status,
        404
    );
    let r = b
        .request(
            "DELETE",
            "/hitokoto/v2/not-a-uuid",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!((r.status, r.json()["parameter"].as_str()), (400, Some("uuid")));
    for node in [&a, &b] {
        eventually(Duration::from_secs(1), "the deleted sentence is gone", || async {
            (node.get("/hitokoto/v2/?c=l").await.status == 404).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn writes_are_disabled_without_a_token() {
    let s = TestServer::start(Options::default()).await;
    let r = s
        .request(
            "POST",
            "/hitokoto/v2/",
            &[("authorization", "Bearer x")],
            "{\"hitokoto\":\"a\",\"from\":\"b\"}",
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (403, Some("writes_disabled"))
    );
}

#[tokio::test]
async fn a_write_while_postgres_is_down_is_refused_never_lost() {
    let proxy = FaultProxy::start(pg_addr()).await;
    let opts = Options {
        pg_url: Some(via(&pg_url(), proxy.addr)),
        ..Options::default().env("DIEM_ADMIN__TOKEN", TOKEN)
    };
    let s = TestServer::start_with(opts, &[('a', "seed", "x")]).await;
    proxy.set(Mode::BlackHole);
    proxy.cut();
    let auth = format!("Bearer {TOKEN}");
    let body = json!({"hitokoto": "during the outage", "from": "t"}).to_string();
    let r = s
        .request("POST", "/hitokoto/v2/", &[("authorization", &auth)], &body)
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(!r.header("retry-after").is_empty());
    proxy.set(Mode::Pass);
    let n: i64 = pg()
        .await
        .query_one(
            &format!("SELECT count(*) FROM {}.sentences WHERE hitokoto = $1", s.schema),
            &[&"during the outage"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a refused write was not made");
}

#[tokio::test]
async fn reads_per_query_fall_back_to_the_snapshot() {
    let proxy = FaultProxy::start(pg_addr()).await;
    let s = TestServer::start(Options {
        pg_url: Some(via(&pg_url(), proxy.addr)),
        ..Options::default()
            .env("DIEM_POSTGRES__READS", "query")
            .env("DIEM_LIMITER__ENABLED", false)
    })
    .await;
    let bundle = write_bundle(s.dir.path(), &[('a', "q1", "x"), ('b', "q22", "y")]);
    assert_eq!(import(&s.schema, &bundle).await.0, 0);
    s.wait_ready(Duration::from_secs(15)).await;
    assert_eq!(s.get("/hitokoto/v2/?c=b").await.body, "q22——「y」");
    assert_eq!(s.get("/hitokoto/v2/?length=3").await.body, "q1——「x」");
    assert_eq!(s.get("/hitokoto/v2/?c=c").await.status, 404);
    // The reads go through the shared, pipelined connections.
    eventually(Duration::from_secs(5), "2 shared read connections", || async {
        let stats = s.ctl(serde_json::json!({"cmd": "stats"})).await;
        (stats["postgres"]["read_connections"] == 2).then_some(())
    })
    .await;
    // Every read is the table's at that moment: a change or a deletion is
    // served at once, whatever the snapshot holds.
    let db = pg().await;
    db.execute(
        &format!(
            "UPDATE {}.sentences SET \"from\" = 'z' WHERE hitokoto = 'q1'",
            s.schema
        ),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.get("/hitokoto/v2/?c=a").await.body, "q1——「z」");
    db.execute(
        &format!("DELETE FROM {}.sentences WHERE hitokoto = 'q1'", s.schema),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.get("/hitokoto/v2/?c=a").await.status, 404);
    db.execute(
        &format!(
            "INSERT INTO {}.sentences (uuid, id, hitokoto, type, \"from\", creator, length) \
             VALUES (gen_random_uuid(), 77, 'q1', 'a', 'w', 't', 2)",
            s.schema
        ),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(s.get("/hitokoto/v2/?c=a").await.body, "q1——「w」");
    proxy.set(Mode::Refuse);
    proxy.cut();
    for _ in 0..5 {
        let r = s.get("/hitokoto/v2/?c=b").await;
        assert_eq!((r.status, r.body.as_str()), (200, "q22——「y」"));
    }
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    let schema = unique("t_");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let schema = schema.clone();
            std::thread::spawn(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_diem"))
                    .env_clear()
                    .env("DIEM_POSTGRES__URL", pg_url())
                    .env("DIEM_POSTGRES__SCHEMA", &schema)
                    .arg("migrate")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let mut applied_now = 0;
    for r in runs {
        let out = r.join().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains(&format!("{} applied now", MIGRATIONS.len())) {
            applied_now += 1;
        } else {
            assert!(text.contains("0 applied now"), "{text}");
        }
    }
    assert_eq!(applied_now, 1);
    let versions: i64 = pg()
        .await
        .query_one(&format!("SELECT count(*) FROM {schema}.diem_migrations"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, MIGRATIONS.len() as i64);
    drop_schema_blocking(schema);
}

/// Issue 29: a write changes every node's snapshot by its row — each node
/// reads that one row, not the table — and is visible on all of them soon
/// after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reaches_every_node_s_snapshot_by_its_row() {
    let opts = Options::default()
        .env("DIEM_ADMIN__TOKEN", TOKEN)
        .env("DIEM_LIMITER__ENABLED", false);
    let seed: Vec<(char, String, String)> = (0..300)
        .map(|i| ('a', format!("seed {i}"), "x".to_owned()))
        .collect();
    let seed: Vec<(char, &str, &str)> = seed
        .iter()
        .map(|(c, t, f)| (*c, t.as_str(), f.as_str()))
        .collect();
    let a = TestServer::start_with(opts.clone(), &seed).await;
    let mut nodes = vec![a];
    for _ in 0..2 {
        nodes.push(
            TestServer::start_ready(Options {
                schema: Some(nodes[0].schema.clone()),
                ..opts.clone()
            })
            .await,
        );
    }
    let read = |stats: &serde_json::Value| {
        (
            stats["corpus"]["rows_read"].as_u64().unwrap(),
            stats["corpus"]["full_loads"].as_u64().unwrap(),
        )
    };
    let mut before = Vec::new();
    for s in &nodes {
        before.push(read(&s.ctl(json!({"cmd": "stats"})).await));
    }
    let auth = format!("Bearer {TOKEN}");
    const WRITES: usize = 10;
    let mut visible = Vec::new();
    for i in 0..WRITES {
        let body = json!({"hitokoto": format!("row by row {i}"), "from": "test", "type": "b"}).to_string();
        let r = nodes[0]
            .request("POST", "/hitokoto/v2/", &[("authorization", &auth)], &body)
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let uuid = r.json()["uuid"].as_str().unwrap().to_owned();
        let written = std::time::Instant::now();
        for s in &nodes[1..] {
            eventually(Duration::from_secs(5), "the write is visible", || async {
                (s.get(&format!("/hitokoto/v2/{uuid}")).await.status == 200).then_some(())
            })
            .await;
        }
        visible.push(written.elapsed());
    }
    // Each node has read each written row once (the writing node too: it
    // served its write at once, and applies PostgreSQL's row when notified).
    let mut per_node = Vec::new();
    for (s, (rows0, full0)) in nodes.iter().zip(&before) {
        let after = eventually(Duration::from_secs(5), "every notification applied", || async {
            let (rows, full) = read(&s.ctl(json!({"cmd": "stats"})).await);
            (rows - rows0 >= WRITES as u64).then_some((rows - rows0, full - full0))
        })
        .await;
        per_node.push(after);
    }
    visible.sort();
    eprintln!(
        "incremental snapshot, 3 nodes, {WRITES} writes of one row on a table of 300: rows read and whole loads per node {per_node:?}; write-to-visible on the two others: median {:?}, max {:?}",
        visible[WRITES / 2],
        visible[WRITES - 1]
    );
    for (rows, full) in &per_node {
        assert_eq!(
            (*rows, *full),
            (WRITES as u64, 0),
            "one row read per write per node: {per_node:?}"
        );
    }
}
