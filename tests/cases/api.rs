//! The DIEM API: every encoding and parameter, JSONP, the pick, errors.

use crate::support::server::{Options, TestServer};
use std::collections::HashMap;

const SMALL: &[(char, &str, &str)] = &[
    ('a', "ab", "src-a"),
    ('a', "abcdefghij", "src-a2"),
    ('b', "xyz", "src-b"),
    ('k', "a <b> & \u{2028} \"q\"", "src-k"),
];

/// A server whose corpus is exactly `sentences`, limiter off.
async fn with_corpus(sentences: &[(char, &str, &str)]) -> TestServer {
    TestServer::start_with(
        Options::default().env("DIEM_LIMITER__ENABLED", "false"),
        sentences,
    )
    .await
}

#[tokio::test]
async fn plain_json_jsonp_and_js() {
    let s = with_corpus(&SMALL[..1]).await;

    let r = s.get("/hitokoto/v2/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ab——「src-a」");
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert_eq!(s.get("/hitokoto/v2/?encode=text").await.body, "ab——「src-a」");
    assert_eq!(s.get("/hitokoto/v2").await.body, "ab——「src-a」");

    let r = s.get("/hitokoto/v2/?encode=json").await;
    assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
    assert_eq!(r.json(), serde_json::json!({"hitokoto": "ab", "source": "src-a"}));

    let r = s.get("/hitokoto/v2/?callback=my.cb_1&encode=json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(r.body, r#"my.cb_1({"hitokoto":"ab","source":"src-a"});"#);
    assert_eq!(
        s.get("/hitokoto/v2/?callback=cb").await.body,
        r#"cb({"hitokoto":"ab","source":"src-a"});"#
    );

    let r = s.get("/hitokoto/v2/?encode=js").await;
    assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
    assert!(r.body.contains(r#"var t="ab——「src-a」""#), "{}", r.body);
    assert!(r.body.contains("querySelectorAll('.hitokoto')") && r.body.contains("textContent"));

    let r = s.request("HEAD", "/hitokoto/v2/", &[], "").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
}

#[tokio::test]
async fn script_injection_is_escaped() {
    let s = with_corpus(&SMALL[3..]).await;
    for path in [
        "/hitokoto/v2/?encode=js",
        "/hitokoto/v2/?callback=cb",
        "/hitokoto/v2/?encode=json",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200);
        for raw in ["<b>", " & ", "\u{2028}"] {
            assert!(!r.body.contains(raw), "{path}: {raw:?} unescaped in {}", r.body);
        }
    }
    let v = s.get("/hitokoto/v2/?encode=json").await.json();
    assert_eq!(v["hitokoto"], "a <b> & \u{2028} \"q\"");
}

#[tokio::test]
async fn filters_by_length_category_and_bounds() {
    let s = with_corpus(SMALL).await;
    let texts = |path: String| {
        let s = &s;
        async move {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..60 {
                let r = s.get(&path).await;
                if r.status != 200 {
                    return (r.status, seen);
                }
                seen.insert(r.json()["hitokoto"].as_str().unwrap().to_owned());
            }
            (200, seen)
        }
    };
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    // length=N: shorter than N.
    assert_eq!(
        texts("/hitokoto/v2/?encode=json&length=3".into()).await,
        (200, set(&["ab"]))
    );
    assert_eq!(
        texts("/hitokoto/v2/?encode=json&length=4".into()).await,
        (200, set(&["ab", "xyz"]))
    );
    // A whole number outside 2..=100 means no restriction; anything else
    // is a 400 naming `length`, as the original API answered.
    assert_eq!(
        texts("/hitokoto/v2/?encode=json&length=1".into()).await.1.len(),
        4
    );
    let r = s.get("/hitokoto/v2/?length=abc").await;
    assert_eq!((r.status, r.json()["parameter"].as_str()), (400, Some("length")));
    // A repeated parameter takes its last value.
    let r = s.get("/hitokoto/v2/?encode=xml&encode=json").await;
    assert_eq!(r.status, 200);
    assert!(r.json()["hitokoto"].is_string());
    // Categories, repeatable.
    assert_eq!(
        texts("/hitokoto/v2/?encode=json&c=a".into()).await,
        (200, set(&["ab", "abcdefghij"]))
    );
    assert_eq!(texts("/hitokoto/v2/?encode=json&c=b&c=k".into()).await.1.len(), 2);
    // Inclusive bounds.
    assert_eq!(
        texts("/hitokoto/v2/?encode=json&min_length=3&max_length=3".into()).await,
        (200, set(&["xyz"]))
    );
    assert_eq!(
        texts("/hitokoto/v2/?encode=json&min_length=10".into())
            .await
            .1
            .len(),
        2,
        "abcdefghij and the 16-character one"
    );
    // Nothing matches: 404 with a JSON error.
    let r = s.get("/hitokoto/v2/?c=c").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
}

#[tokio::test]
async fn malformed_parameters_are_400_naming_them() {
    let s = with_corpus(&SMALL[..1]).await;
    for (query, parameter) in [
        ("encode=xml", "encode"),
        ("callback=alert(1)", "callback"),
        ("callback=a%3Balert(1)", "callback"),
        ("callback=%3C%2Fscript%3E", "callback"),
        ("encode=js&callback=cb", "callback"),
        ("c=z", "c"),
        ("c=", "c"),
        ("min_length=x", "min_length"),
        ("max_length=-3", "max_length"),
        ("max_length=99999999999", "max_length"),
        ("min_length=5&max_length=2", "min_length"),
    ] {
        let r = s.get(&format!("/hitokoto/v2/?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        let v = r.json();
        assert_eq!(v["parameter"], parameter, "{query}: {v}");
        assert_eq!(v["error"], "bad_parameter");
        assert!(!v["message"].as_str().unwrap().is_empty());
        assert_eq!(r.header("access-control-allow-origin"), "*");
    }
    // Unknown parameters are ignored, as cache busters are.
    assert_eq!(s.get("/hitokoto/v2/?_=123&foo=bar").await.status, 200);
}

#[tokio::test]
async fn the_pick_is_uniform() {
    let sentences: Vec<(char, &str, &str)> = vec![
        ('a', "s1", "x"),
        ('b', "s2", "x"),
        ('c', "s3", "x"),
        ('d', "s4", "x"),
        ('e', "s5", "x"),
    ];
    let s = with_corpus(&sentences).await;
    let n = 2_500;
    let mut hits: HashMap<String, u32> = HashMap::new();
    for _ in 0..n {
        let r = s.get("/hitokoto/v2/?encode=json").await;
        *hits
            .entry(r.json()["hitokoto"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(hits.len(), 5, "{hits:?}");
    // Chi-square, 4 degrees of freedom: 32.0 is p < 2e-6, so a uniform pick
    // fails this about once in half a million runs; a biased one (say one
    // sentence at 25% instead of 20%) fails it every time.
    let expected = f64::from(n) / 5.0;
    let chi2: f64 = hits
        .values()
        .map(|&h| (f64::from(h) - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 32.0, "chi2 = {chi2}: {hits:?}");
}

#[tokio::test]
async fn routes_methods_and_cors() {
    let s = with_corpus(&SMALL[..1]).await;
    assert_eq!(s.get("/healthz").await.body, "ok\n");
    let r = s.get("/nope").await;
    assert_eq!((r.status, r.json()["error"].as_str()), (404, Some("not_found")));
    let r = s.request("PUT", "/hitokoto/v2/", &[], "").await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").contains("GET"));
    let r = s.request("OPTIONS", "/hitokoto/v2/", &[], "").await;
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-methods").contains("POST"));
    let r = s.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("diem_http_requests_total{route=\"hitokoto\",status=\"200\"}"),
        "{}",
        r.body
    );
    assert!(r.body.contains("diem_http_request_duration_seconds_bucket"));
    assert!(r.body.contains("diem_postgres_pool_connections"));
    assert!(r.body.contains("diem_limiter_backend"));
}
