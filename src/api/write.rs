//! `POST /hitokoto/v2/` and `DELETE /hitokoto/v2/{uuid}`.
//!
//! Both need `Authorization: Bearer <admin.token>`; with no token configured
//! they answer 403. A 201 or 204 is sent only after PostgreSQL committed
//! the change, so an acknowledged write is durable; the trigger on the
//! table then tells every node to reload (visible everywhere within the
//! 20 ms debounce plus one reload). When PostgreSQL is unreachable the
//! answer is 503 with `Retry-After`, never a success.
//!
//! The POST body is a JSON object: `hitokoto` and `from` (strings, required),
//! `type` (a category key, default `g`), `from_who` (string or null),
//! `creator` (default `api`), and optionally `uuid` (to make a retried
//! POST idempotent: the same uuid twice is a 409).

use hyper::header::{HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use hyper::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::request::{HttpResponse, Request};
use crate::api::response::{bad_parameter, body, error, retry_later, JSON};
use crate::node::Node;
use crate::store::bundle::MAX_SENTENCE_CHARS;
use crate::store::queries;
use crate::store::sentence::{char_length, Category, Sentence};
use crate::store::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSentence {
    hitokoto: String,
    from: String,
    #[serde(rename = "type", default)]
    category: Option<String>,
    #[serde(default)]
    from_who: Option<String>,
    #[serde(default)]
    creator: Option<String>,
    #[serde(default)]
    uuid: Option<Uuid>,
}

/// Constant-time comparison, so the token cannot be guessed byte by byte
/// from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `None` when the request may write; otherwise the refusal.
fn authorize(node: &Node, request: &Request) -> Option<HttpResponse> {
    let token = node.config().admin.token.clone();
    if token.is_empty() {
        return Some(error(
            StatusCode::FORBIDDEN,
            "writes_disabled",
            "writes are disabled on this node (admin.token is not set)",
        ));
    }
    let given = request
        .parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match given {
        Some(given) if same(given, token.as_bytes()) => None,
        _ => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid `Authorization: Bearer <token>` header is required",
            );
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(r)
        }
    }
}

fn store_failure(e: &StoreError) -> HttpResponse {
    tracing::warn!(error = %e, "write failed");
    retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "postgres is unavailable; the write was not made",
        5,
    )
}

fn validate(n: NewSentence) -> Result<Sentence, Box<HttpResponse>> {
    let text = n.hitokoto.trim().to_owned();
    if text.is_empty() {
        return Err(Box::new(bad_parameter("hitokoto", "must not be empty")));
    }
    if text.chars().count() > MAX_SENTENCE_CHARS {
        return Err(Box::new(bad_parameter(
            "hitokoto",
            &format!("must be at most {MAX_SENTENCE_CHARS} characters"),
        )));
    }
    let category = match n.category.as_deref().map(str::parse::<Category>) {
        None => 'g',
        Some(Ok(c)) => c.key(),
        Some(Err(e)) => return Err(Box::new(bad_parameter("type", &e.to_string()))),
    };
    Ok(Sentence {
        id: 0,
        uuid: n.uuid.unwrap_or_else(Uuid::new_v4),
        length: char_length(&text),
        hitokoto: text,
        category,
        from: n.from,
        from_who: n.from_who,
        creator: n.creator.unwrap_or_else(|| "api".to_owned()),
        created_at: 0,
    })
}

/// Answers `POST /hitokoto/v2/`.
pub(crate) async fn post(node: &Node, request: &Request) -> HttpResponse {
    if let Some(refusal) = authorize(node, request) {
        return refusal;
    }
    let new: NewSentence = match serde_json::from_slice(&request.body) {
        Ok(n) => n,
        Err(e) => return bad_parameter("body", &format!("must be a JSON sentence object: {e}")),
    };
    let sentence = match validate(new) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let uuid = sentence.uuid;
    let inserted = node
        .pg
        .timed(|c| async move { queries::insert(&c, sentence).await })
        .await;
    match inserted {
        Ok(s) => {
            let mut r = body(
                StatusCode::CREATED,
                JSON,
                serde_json::to_vec(&s).unwrap_or_default(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("/hitokoto/v2/{uuid}")) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
        Err(StoreError::Postgres(e))
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            error(
                StatusCode::CONFLICT,
                "conflict",
                &format!("a sentence with uuid {uuid} already exists"),
            )
        }
        Err(e) => store_failure(&e),
    }
}

/// Answers `DELETE /hitokoto/v2/{uuid}`.
pub(crate) async fn delete(node: &Node, request: &Request, id: &str) -> HttpResponse {
    if let Some(refusal) = authorize(node, request) {
        return refusal;
    }
    let Ok(uuid) = Uuid::parse_str(id) else {
        return bad_parameter("uuid", "the path must end in a sentence's UUID");
    };
    match node
        .pg
        .timed(|c| async move { queries::delete(&c, uuid).await })
        .await
    {
        Ok(true) => body(StatusCode::NO_CONTENT, JSON, bytes::Bytes::new()),
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no sentence has this uuid"),
        Err(e) => store_failure(&e),
    }
}
