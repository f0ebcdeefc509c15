//! `POST /hitokoto/v2/`, `DELETE /hitokoto/v2/{uuid}`, and
//! `GET /hitokoto/v2/{uuid}`.
//!
//! The two writes need `Authorization: Bearer <admin.token>`, checked by
//! the connection before the body is read ([`auth`](super::auth)). A 201 or
//! 204 is sent only after PostgreSQL committed the change, so an
//! acknowledged write is durable, and only after this node serves it
//! (read-your-writes); the trigger on the table then tells every node to
//! reload (visible everywhere within the 20 ms debounce plus one reload).
//! When PostgreSQL is unreachable the answer is 503 with `Retry-After`,
//! never a success; a request PostgreSQL could never store is a 400 naming
//! the field, never a 503 to retry forever.
//!
//! The POST body is a JSON object: `hitokoto` and `from` (non-empty
//! strings, required), `type` (a category key, default `g`), `from_who`
//! (string or null), `creator` (default `api`), and optionally `uuid` (to
//! make a retried POST idempotent: the same uuid twice is a 409). No string
//! may contain a NUL character; `hitokoto` and `from` must show something
//! (not only spaces or invisible characters such as U+200B); `from`,
//! `from_who` and `creator` are at most [`MAX_NAME_CHARS`] characters. A
//! body sent with a `Content-Type` must be JSON (`application/json` or a
//! `+json` type; 415 otherwise); one without is read as JSON, as DIEM-API
//! did. An error names the field it is about.

use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::request::{HttpResponse, Request};
use crate::api::response::{bad_parameter, body, error, retry_later, JSON};
use crate::config::ReadMode;
use crate::node::Node;
use crate::store::bundle::MAX_SENTENCE_CHARS;
use crate::store::corpus_shared::LocalWrite;
use crate::store::queries;
use crate::store::sentence::{char_length, detail_body, Category, Sentence};
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

fn store_failure(e: &StoreError) -> HttpResponse {
    tracing::warn!(error = %e, "write failed");
    retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "postgres is unavailable; the write was not made",
        5,
    )
}

/// Longest `from`, `from_who` and `creator`, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 255;

/// Whether `c` shows nothing: white space, a control character, or a
/// default-ignorable code point (zero-width spaces and joiners, direction
/// marks, variation selectors, the BOM, soft hyphen, Hangul fillers, tags).
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// A required text field: trimmed, showing something, no NUL.
fn text(field: &'static str, value: &str) -> Result<String, Box<HttpResponse>> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Box::new(bad_parameter(field, "must not be empty")));
    }
    if value.chars().all(invisible) {
        return Err(Box::new(bad_parameter(
            field,
            "must contain a visible character (not only spaces or invisible ones)",
        )));
    }
    no_nul(field, value)?;
    Ok(value.to_owned())
}

/// A name field: at most [`MAX_NAME_CHARS`] characters.
fn short(field: &'static str, value: &str) -> Result<(), Box<HttpResponse>> {
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(Box::new(bad_parameter(
            field,
            &format!("must be at most {MAX_NAME_CHARS} characters"),
        )));
    }
    Ok(())
}

/// PostgreSQL text cannot hold NUL: refuse it as the client's error.
fn no_nul(field: &'static str, value: &str) -> Result<(), Box<HttpResponse>> {
    if value.contains('\0') {
        return Err(Box::new(bad_parameter(field, "must not contain a NUL character")));
    }
    Ok(())
}

fn validate(n: NewSentence) -> Result<Sentence, Box<HttpResponse>> {
    let hitokoto = text("hitokoto", &n.hitokoto)?;
    if hitokoto.chars().count() > MAX_SENTENCE_CHARS {
        return Err(Box::new(bad_parameter(
            "hitokoto",
            &format!("must be at most {MAX_SENTENCE_CHARS} characters"),
        )));
    }
    let from = text("from", &n.from)?;
    short("from", &from)?;
    if let Some(who) = &n.from_who {
        no_nul("from_who", who)?;
        short("from_who", who)?;
    }
    if let Some(creator) = &n.creator {
        no_nul("creator", creator)?;
        short("creator", creator)?;
    }
    let category = match n.category.as_deref().map(str::parse::<Category>) {
        None => 'g',
        Some(Ok(c)) => c.key(),
        Some(Err(e)) => return Err(Box::new(bad_parameter("type", &e.to_string()))),
    };
    Ok(Sentence {
        id: 0,
        uuid: n.uuid.unwrap_or_else(Uuid::new_v4),
        length: char_length(&hitokoto),
        hitokoto,
        category,
        from,
        from_who: n.from_who,
        creator: n.creator.unwrap_or_else(|| "api".to_owned()),
        created_at: 0,
    })
}

/// 415 when the body is declared as something other than JSON.
fn not_json(request: &Request) -> Option<HttpResponse> {
    let declared = request.parts.headers.get(CONTENT_TYPE)?;
    let essence = declared
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        return None;
    }
    Some(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the body must be JSON: send `Content-Type: application/json`, or none",
    ))
}

/// The uuid at the end of a sentence path.
fn uuid_of(id: &str) -> Result<Uuid, Box<HttpResponse>> {
    Uuid::parse_str(id).map_err(|_| Box::new(bad_parameter("uuid", "the path must end in a sentence's UUID")))
}

/// Answers `POST /hitokoto/v2/` (the token was checked by the connection).
pub(crate) async fn post(node: &Node, request: &Request) -> HttpResponse {
    if let Some(refusal) = not_json(request) {
        return refusal;
    }
    let mut de = serde_json::Deserializer::from_slice(&request.body);
    let new: NewSentence = match serde_path_to_error::deserialize(&mut de) {
        Ok(n) => n,
        Err(e) => {
            let field = e.path().to_string();
            let inner = e.into_inner();
            return if field.is_empty() || field == "." {
                bad_parameter("body", &format!("must be a JSON sentence object: {inner}"))
            } else {
                bad_parameter(&field, &inner.to_string())
            };
        }
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
            let mut r = body(StatusCode::CREATED, JSON, detail_body(&s));
            node.corpus.apply_local(LocalWrite::Added(s));
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

/// Answers `DELETE /hitokoto/v2/{uuid}` (the token was checked by the
/// connection).
pub(crate) async fn delete(node: &Node, id: &str) -> HttpResponse {
    let uuid = match uuid_of(id) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    match node
        .pg
        .timed(|c| async move { queries::delete(&c, uuid).await })
        .await
    {
        Ok(true) => {
            node.corpus.apply_local(LocalWrite::Removed(uuid));
            body(StatusCode::NO_CONTENT, JSON, bytes::Bytes::new())
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no sentence has this uuid"),
        Err(e) => store_failure(&e),
    }
}

/// Answers `GET /hitokoto/v2/{uuid}`: the sentence with every stored
/// field, from the snapshot (from PostgreSQL with `postgres.reads =
/// "query"`, the snapshot when that fails).
pub(crate) async fn get(node: &Node, id: &str) -> HttpResponse {
    let uuid = match uuid_of(id) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if node.with_config(|c| c.postgres.reads) == ReadMode::Query {
        match node
            .pg
            .timed(|c| async move { queries::by_uuid(&c, uuid).await })
            .await
        {
            Ok(Some(s)) => return body(StatusCode::OK, JSON, detail_body(&s)),
            Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", "no sentence has this uuid"),
            Err(e) => tracing::debug!(error = %e, "query read failed; answering from the snapshot"),
        }
    }
    match node.corpus.load().get(&uuid) {
        Some(entry) => body(StatusCode::OK, JSON, entry.detail.clone()),
        None => error(StatusCode::NOT_FOUND, "not_found", "no sentence has this uuid"),
    }
}
