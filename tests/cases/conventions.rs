//! What caches expect of the API (issue 31, in part): a sentence by its
//! uuid is cacheable with a strong `ETag`, revalidated with
//! `If-None-Match`.

use crate::support::server::{eventually, Options, TestServer};

#[tokio::test]
async fn a_sentence_by_uuid_is_cacheable_and_revalidated_by_its_etag() {
    const TOKEN: &str = "conventions-t0ken-0123456789";
    let s = TestServer::start(Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)).await;
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
    let any = s.request("GET", &path, &[("if-none-match", "*")], "").await;
    assert_eq!(any.status, 304);
    let other = s
        .request("GET", &path, &[("if-none-match", "\"0000000000000000\"")], "")
        .await;
    assert_eq!(other.status, 200, "another tag: the whole answer");
    assert_eq!(other.body, first.body);
}
