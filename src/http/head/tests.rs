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
    for answer in answers() {
        assert!(shape(&answer).is_some(), "{:?}", fields(&answer));
        // A limited answer: the prebuilt head against the inserts.
        let mut fast = answer.clone();
        complete(&mut fast, Grant::Any, Some(&limits()), false);
        let mut slow = answer.clone();
        insert_each(&mut slow, Grant::Any, Some(&limits()), false);
        assert_eq!(fields(&fast), fields(&slow));
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
        complete(&mut plain, Grant::Any, None, false);
        assert_eq!(plain["content-type"], answer["content-type"]);
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
    complete(&mut tagged, Grant::Any, Some(&limits()), false);
    assert_eq!(tagged["etag"], "\"x\"");
    assert_eq!(tagged["ratelimit"], "\"default\";r=7;t=290");

    let mut first_not_type = HeaderMap::new();
    first_not_type.insert(CACHE_CONTROL, NO_STORE);
    first_not_type.insert(CONTENT_TYPE, JSON);
    assert_eq!(shape(&first_not_type), None);

    let blog = HeaderValue::from_static("https://blog.example");
    let mut granted = answers().remove(0);
    complete(&mut granted, Grant::Origin(blog.clone()), None, false);
    assert_eq!(granted["access-control-allow-origin"], blog);
    assert_eq!(granted[VARY], "Origin");

    let mut draining = answers().remove(0);
    complete(&mut draining, Grant::Any, None, true);
    assert_eq!(draining["connection"], "close");
    assert_eq!(draining["access-control-allow-origin"], "*");
}
