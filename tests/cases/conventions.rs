//! What API clients, gateways, caches and browsers expect (issue 31): the
//! IETF RateLimit fields beside the legacy ones, parsed with a real
//! Structured Field Values parser (the `sfv` crate); `Cache-Control: no-store`
//! on random answers and `ETag`/`If-None-Match` on a sentence by uuid; RFC
//! 9457 problem details when the client prefers them; the OpenAPI document,
//! checked by a real validator and against the server's routes; CORS
//! narrowed live to a list, obeyed by a real browser.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::server::{eventually, Options, TestServer};

/// The one item of a Structured Field list: (its string, its parameters
/// by name as integers).
fn sf_item(field: &str) -> (String, Vec<(String, i64)>) {
    let list: sfv::List = sfv::Parser::new(field)
        .parse()
        .unwrap_or_else(|e| panic!("`{field}` is not a Structured Field list: {e}"));
    assert_eq!(list.len(), 1, "{field}");
    let sfv::ListEntry::Item(item) = &list[0] else {
        panic!("{field}: an item, not an inner list")
    };
    let name = item
        .bare_item
        .as_string()
        .unwrap_or_else(|| panic!("{field}: the policy is a string"))
        .as_str()
        .to_owned();
    let params = item
        .params
        .iter()
        .map(|(k, v)| {
            let n = v
                .as_integer()
                .unwrap_or_else(|| panic!("{field}: {} is an integer", k.as_str()));
            (k.as_str().to_owned(), i64::from(n))
        })
        .collect();
    (name, params)
}

fn param(params: &[(String, i64)], name: &str) -> i64 {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no `{name}` in {params:?}"))
}

#[tokio::test]
async fn ratelimit_fields_parse_as_structured_fields_and_agree_with_the_legacy_ones() {
    let s = TestServer::start(
        Options::default()
            .env("DIEM_LIMITER__BURST", "4")
            .env("DIEM_LIMITER__COUNT", "30")
            .env("DIEM_LIMITER__PERIOD", "60s"),
    )
    .await;
    for i in 0..7u64 {
        let r = s.get("/hitokoto/v2/").await;
        let (policy, p) = sf_item(r.header("ratelimit-policy"));
        assert_eq!(policy, "default");
        // 5 at once; one more every 2 s: whole again after 10 s.
        assert_eq!((param(&p, "q"), param(&p, "w")), (5, 10), "{p:?}");
        let (name, rl) = sf_item(r.header("ratelimit"));
        assert_eq!(name, "default");
        let legacy = |h: &str| r.header(h).parse::<i64>().unwrap_or_else(|_| panic!("{h}"));
        assert_eq!(legacy("x-ratelimit-limit"), 5, "legacy limit unchanged");
        assert_eq!(param(&rl, "r"), legacy("x-ratelimit-remaining"), "request {i}");
        assert_eq!(param(&rl, "t"), legacy("x-ratelimit-reset"), "request {i}");
        if i < 5 {
            assert_eq!(r.status, 200, "request {i}");
            assert_eq!(param(&rl, "r"), 4 - i as i64, "request {i}");
        } else {
            assert_eq!(r.status, 429, "request {i}");
            assert_eq!(param(&rl, "r"), 0);
            let retry: u64 = r.header("retry-after").parse().expect("Retry-After on a 429");
            assert!((1..=2).contains(&retry), "{retry}");
        }
    }
}

#[tokio::test]
async fn a_sentence_by_uuid_is_cacheable_and_revalidated_by_its_etag() {
    const TOKEN: &str = "conventions-t0ken-0123456789";
    let s = TestServer::start(Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)).await;
    let path = eventually(Duration::from_secs(30), "a sentence written", || async {
        let r = s
            .post(
                TOKEN,
                r#"{"hitokoto":"a sentence a cache may keep","from":"the conventions test"}"#,
            )
            .await;
        (r.status == 201).then(|| r.header("location").to_owned())
    })
    .await;
    let first = s.get(&path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("cache-control"), "public, max-age=60");
    let tag = first.header("etag").to_owned();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
        "a strong ETag: {tag}"
    );
    let again = s.get(&path).await;
    assert_eq!(again.header("etag"), tag, "the same sentence, the same tag");
    let revalidated = s.request("GET", &path, &[("if-none-match", &tag)], "").await;
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), tag);
    let any = s.request("GET", &path, &[("if-none-match", "*")], "").await;
    assert_eq!(any.status, 304);
    let other = s
        .request("GET", &path, &[("if-none-match", "\"0000000000000000\"")], "")
        .await;
    assert_eq!(other.status, 200, "another tag: the whole answer");
    assert_eq!(other.body, first.body);
}

#[tokio::test]
async fn errors_are_problem_details_when_the_client_prefers_them() {
    let s = TestServer::start(
        Options::default()
            .env("DIEM_LIMITER__BURST", "0")
            .env("DIEM_LIMITER__COUNT", "1")
            .env("DIEM_LIMITER__PERIOD", "1h"),
    )
    .await;
    let problem = [("accept", "application/problem+json")];
    // The default stays diem's own JSON.
    let r = s.get("/hitokoto/v2/not-a-uuid").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    assert_eq!(r.json()["error"], "bad_parameter");
    // Preferred: RFC 9457.
    let r = s.request("GET", "/hitokoto/v2/not-a-uuid", &problem, "").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], "urn:diem:problem:bad_parameter", "{p}");
    assert_eq!(p["title"], "Bad Request");
    assert_eq!(p["status"], 400);
    assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{p}");
    assert_eq!(p["parameter"], "uuid");
    let r = s.request("GET", "/nowhere", &problem, "").await;
    assert_eq!((r.status, r.json()["status"].as_u64()), (404, Some(404)));
    // A 429 names the violated policy and keeps its headers.
    let _ = s.get("/hitokoto/v2/").await;
    let r = s.request("GET", "/hitokoto/v2/", &problem, "").await;
    assert_eq!(r.status, 429);
    let p = r.json();
    assert_eq!(p["violated-policies"], serde_json::json!(["default"]), "{p}");
    assert_eq!(p["type"], "urn:diem:problem:rate_limited");
    assert!(!r.header("retry-after").is_empty() && !r.header("ratelimit").is_empty());
    // A refusal of a random answer is not stored either.
    assert_eq!(r.header("cache-control"), "no-store");
    // A handler that crashed: its 500 too (the request comes back with
    // the crash, its Accept read then).
    let crash = [("accept", "application/problem+json"), ("x-diem-fault", "panic")];
    let r = s.request("GET", "/nowhere", &crash, "").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.json()["type"], "urn:diem:problem:internal_error");
    // application/json preferred: diem's own.
    let r = s
        .request(
            "GET",
            "/nowhere",
            &[("accept", "application/json, application/problem+json;q=0.5")],
            "",
        )
        .await;
    assert_eq!(r.json()["error"], "not_found");
}

#[tokio::test]
async fn random_answers_are_not_stored_by_caches() {
    let s = TestServer::start(Options::no_limit()).await;
    for path in [
        "/hitokoto/v2/",
        "/hitokoto/v2/?encode=json",
        "/hitokoto/v2/?encode=js",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("cache-control"), "no-store", "{path}");
    }
    // Not limited: no rate-limit field of either kind.
    let r = s.get("/hitokoto/v2/").await;
    assert!(r.header("ratelimit").is_empty() && r.header("x-ratelimit-limit").is_empty());
}

/// The server's answer to `method` on `path`: whether the route exists
/// and allows the method (not a 404 of an unknown route, not a 405).
async fn allowed(s: &TestServer, method: &str, path: &str) -> bool {
    let r = s.request(method, path, &[], "").await;
    let unknown_route = r.status == 404 && r.body.contains("no such route");
    !unknown_route && r.status != 405
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_describes_the_routes_the_server_has() {
    let s = TestServer::start(Options::no_limit()).await;
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    let doc: Value = r.json();
    let served = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/openapi.json");
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(&std::fs::read_to_string(&served).unwrap()).unwrap(),
        "the server serves the document in the repository"
    );

    // A real validator (openapi-spec-validator, installed by scripts/test).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &r.body).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("python3 runs: {e}"));
    assert!(
        out.status.success(),
        "openapi-spec-validator (scripts/test installs it: pip install openapi-spec-validator):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(doc["openapi"], "3.1.0");

    // Every route of the server is documented.
    let paths = doc["paths"].as_object().unwrap();
    for route in diem::api::route::Route::ALL {
        if let Some(path) = route.path() {
            assert!(paths.contains_key(path), "{route:?} ({path}) is not documented");
        }
    }
    // Nothing documented that the server does not have, and each path's
    // methods are exactly those the server allows.
    let uuid = "00000000-0000-4000-8000-000000000000";
    for (path, item) in paths {
        let concrete = path.replace("{uuid}", uuid);
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let documented = item.get(method.to_lowercase()).is_some();
            assert_eq!(
                allowed(&s, method, &concrete).await,
                documented,
                "{method} {path}: documented {documented}"
            );
        }
    }
    assert!(!allowed(&s, "GET", "/nowhere").await);
}

/// A plain HTTP server for one page on an origin of its own.
async fn page_server(html: String) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn cors_is_open_by_default_narrowed_live_to_a_list_and_a_browser_obeys_it() {
    let s = TestServer::start_with(
        Options {
            config: Some("[http]\ncors_origins = [\"*\"]\n".into()),
            ..Options::no_limit()
        },
        &[('a', "a quote a page may read", "the cors test")],
    )
    .await;
    let (page, _server) = page_server("<!doctype html><title>elsewhere</title>".into()).await;
    let origin = format!("http://{page}");
    let api = format!("http://{}/hitokoto/v2/?encode=json", s.addr);

    // The default: any origin, no Vary.
    let r = s
        .request("GET", "/hitokoto/v2/", &[("origin", &origin)], "")
        .await;
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert!(r.header("vary").is_empty());

    let profile = tempfile::tempdir().unwrap();
    let (mut browser, events) = super::observer::browser(profile.path()).await;
    let tab = browser.new_page(format!("{origin}/").as_str()).await.unwrap();
    let fetch = format!(
        "fetch('{api}').then(r => r.json()).then(j => 'read: ' + j.hitokoto).catch(e => 'refused: ' + e)"
    );
    let read = super::observer::eval(&tab, &fetch).await;
    assert_eq!(
        read,
        json!("read: a quote a page may read"),
        "a page elsewhere reads a quote"
    );

    // Narrowed, live: another origin only.
    let path = s.config_path.clone().unwrap();
    std::fs::write(&path, "[http]\ncors_origins = [\"https://blog.example\"]\n").unwrap();
    let reload = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(reload["ok"], true, "{reload}");
    assert_eq!(reload["applied"], json!(["http.cors_origins"]), "{reload}");
    let r = s
        .request("GET", "/hitokoto/v2/", &[("origin", &origin)], "")
        .await;
    assert_eq!(r.status, 200, "the server answers; the browser is who refuses");
    assert!(r.header("access-control-allow-origin").is_empty());
    assert_eq!(r.header("vary"), "Origin");
    let refused = super::observer::eval(&tab, &fetch).await;
    assert!(
        refused.as_str().is_some_and(|t| t.starts_with("refused: ")),
        "the browser refuses the page the answer: {refused}"
    );
    let listed = s
        .request("GET", "/hitokoto/v2/", &[("origin", "https://blog.example")], "")
        .await;
    assert_eq!(
        listed.header("access-control-allow-origin"),
        "https://blog.example"
    );
    assert_eq!(listed.header("vary"), "Origin");

    // The page's own origin listed for reads, not for writes.
    std::fs::write(
        &path,
        format!("[http]\ncors_origins = [\"{origin}\"]\ncors_write_origins = [\"https://admin.example\"]\n"),
    )
    .unwrap();
    assert_eq!(s.ctl(json!({"cmd": "reload"})).await["ok"], true);
    let again = super::observer::eval(&tab, &fetch).await;
    assert_eq!(again, json!("read: a quote a page may read"));
    let write_preflight = s
        .request(
            "OPTIONS",
            "/hitokoto/v2/",
            &[("origin", &origin), ("access-control-request-method", "POST")],
            "",
        )
        .await;
    assert_eq!(write_preflight.status, 204);
    assert!(write_preflight.header("access-control-allow-origin").is_empty());
    let write = super::observer::eval(
        &tab,
        &format!(
            "fetch('http://{}/hitokoto/v2/', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: '{{}}'}}).then(r => 'answered: ' + r.status).catch(e => 'refused: ' + e)",
            s.addr
        ),
    )
    .await;
    assert!(
        write.as_str().is_some_and(|t| t.starts_with("refused: ")),
        "the write's preflight grants the page nothing: {write}"
    );
    // A value that is not an origin is refused whole, naming the key.
    std::fs::write(&path, "[http]\ncors_origins = [\"blog.example/path\"]\n").unwrap();
    let bad = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("http.cors_origins"),
        "{bad}"
    );
    browser.close().await.unwrap();
    let _ = events.await;
}
