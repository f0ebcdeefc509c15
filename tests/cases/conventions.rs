//! What API clients, gateways and caches expect (issue 31, in part): the
//! IETF RateLimit fields beside the legacy ones, parsed with a real
//! Structured Field Values parser (the `sfv` crate); `Cache-Control`
//! and `ETag`/`If-None-Match` on the right answers; RFC 9457 problem
//! details when the client prefers them.

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
async fn random_answers_are_not_stored_and_a_sentence_by_uuid_is_cacheable() {
    const TOKEN: &str = "conventions-t0ken-0123456789";
    let s = TestServer::start(Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)).await;
    for path in [
        "/hitokoto/v2/",
        "/hitokoto/v2/?encode=json",
        "/hitokoto/v2/?encode=js",
        "/hitokoto/v2/?callback=cb",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("cache-control"), "no-store", "{path}");
    }
    // A sentence by its uuid: cacheable, with a strong ETag; revalidated
    // with If-None-Match it is a 304 without a body.
    let path = eventually(
        std::time::Duration::from_secs(30),
        "a sentence written",
        || async {
            let r = s
                .post(
                    TOKEN,
                    r#"{"hitokoto":"a sentence a cache may keep","from":"the conventions test"}"#,
                )
                .await;
            (r.status == 201).then(|| r.header("location").to_owned())
        },
    )
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
