use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, RETRY_AFTER, VARY};

use super::*;
use crate::api::response::{JSON, NO_STORE, TEXT};
use crate::limiter::fields::ratelimit_policy;

/// The fields in the order they go out.
fn fields(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect()
}

fn limits() -> Limits {
    Limits {
        limit: 36,
        remaining: 7,
        reset_secs: 290,
        policy: ratelimit_policy(35, 36, 360),
    }
}

/// What the connection adds: every origin granted, not draining.
fn added(limits: Option<Limits>, no_store: bool) -> Added {
    Added {
        grant: Grant::Any,
        limits,
        no_store,
        draining: false,
    }
}

/// The answers of each prebuilt shape, as a worker makes them.
fn answers() -> Vec<HeaderMap> {
    let mut out = Vec::new();
    for second in [
        None,
        Some((CACHE_CONTROL, NO_STORE)),
        Some((RETRY_AFTER, HeaderValue::from_static("3"))),
    ] {
        for content_type in [JSON, TEXT] {
            let mut h = HeaderMap::with_capacity(12);
            h.insert(CONTENT_TYPE, content_type);
            if let Some((name, value)) = second.clone() {
                h.insert(name, value);
            }
            out.push(h);
        }
    }
    out
}

#[test]
fn a_prebuilt_head_is_the_fields_inserted_one_by_one() {
    // Each shape, and a random answer (`Content-Type` alone, no-store added).
    let random = answers().into_iter().filter(|a| a.len() == 1).map(|a| (a, true));
    for (answer, no_store) in answers().into_iter().map(|a| (a, false)).chain(random) {
        assert!(shape(&answer).is_some(), "{:?}", fields(&answer));
        // A limited answer: the prebuilt head against the inserts.
        let mut fast = answer.clone();
        complete(&mut fast, added(Some(limits()), no_store));
        let mut slow = answer.clone();
        insert_each(&mut slow, Grant::Any, Some(limits()), no_store, false);
        assert_eq!(fields(&fast), fields(&slow));
        if no_store {
            assert_eq!(fast["cache-control"], "no-store");
        }
        assert_eq!(fast["content-type"], answer["content-type"]);
        assert_eq!(fast["access-control-allow-origin"], "*");
        assert_eq!(fast["x-content-type-options"], "nosniff");
        assert_eq!(fast["x-ratelimit-limit"], "36");
        assert_eq!(fast["x-ratelimit-remaining"], "7");
        assert_eq!(fast["x-ratelimit-reset"], "290");
        assert_eq!(fast["ratelimit-policy"], "\"default\";q=36;w=360");
        assert_eq!(fast["ratelimit"], "\"default\";r=7;t=290");
        // An answer the limiter did not decide: the two fields inserted.
        let mut plain = answer.clone();
        complete(&mut plain, added(None, no_store));
        assert_eq!(plain["content-type"], answer["content-type"]);
        assert_eq!(plain.get("cache-control"), fast.get("cache-control"));
        assert_eq!(plain["access-control-allow-origin"], "*");
        assert_eq!(plain["x-content-type-options"], "nosniff");
        assert!(plain.get("ratelimit").is_none());
    }
}

#[test]
fn other_shapes_grants_and_a_drain_get_each_field_inserted() {
    let mut tagged = HeaderMap::new();
    tagged.insert(CONTENT_TYPE, JSON);
    tagged.insert(CACHE_CONTROL, NO_STORE);
    tagged.insert(ETAG, HeaderValue::from_static("\"x\""));
    assert_eq!(shape(&tagged), None);
    complete(&mut tagged, added(Some(limits()), false));
    assert_eq!(tagged["etag"], "\"x\"");
    assert_eq!(tagged["ratelimit"], "\"default\";r=7;t=290");

    let mut first_not_type = HeaderMap::new();
    first_not_type.insert(CACHE_CONTROL, NO_STORE);
    first_not_type.insert(CONTENT_TYPE, JSON);
    assert_eq!(shape(&first_not_type), None);

    let blog = HeaderValue::from_static("https://blog.example");
    let mut granted = answers().remove(0);
    let grant = Grant::Origin(blog.clone());
    complete(
        &mut granted,
        Added {
            grant,
            ..added(None, true)
        },
    );
    assert_eq!(granted["access-control-allow-origin"], blog);
    assert_eq!(granted[VARY], "Origin");
    assert_eq!(granted[CACHE_CONTROL], "no-store");

    let mut draining = answers().remove(0);
    complete(
        &mut draining,
        Added {
            draining: true,
            ..added(None, false)
        },
    );
    assert_eq!(draining["connection"], "close");
    assert_eq!(draining["access-control-allow-origin"], "*");

    // A refusal of a random answer (`Retry-After`) is no-store too.
    let mut refused = answers().pop().expect("a refusal");
    complete(&mut refused, added(Some(limits()), true));
    assert_eq!(refused[CACHE_CONTROL], "no-store");
    assert_eq!(refused[RETRY_AFTER], "3");
    assert_eq!(refused["ratelimit"], "\"default\";r=7;t=290");
}
