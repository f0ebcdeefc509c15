//! `GET /hitokoto/v2/`: one random sentence.
//!
//! From the snapshot (the default: an atomic load, a pick, and a body built
//! when the snapshot was) or, with `postgres.reads = "query"`, from
//! PostgreSQL — falling back to the snapshot when PostgreSQL fails, so
//! reads go on during an outage either way.
//!
//! A query read picks the sentence uniformly among those the filter
//! accepts in the snapshot (which LISTEN/NOTIFY keeps in step with the
//! table within milliseconds), then reads it from PostgreSQL by primary key
//! with the filter checked again there: the text served is the table's at
//! that moment. Only when that row is gone or no longer matches (changed
//! since the snapshot) does PostgreSQL pick among the matching rows itself
//! (a count and an offset, linear in them).

use bytes::{BufMut, Bytes, BytesMut};
use hyper::StatusCode;

use crate::api::query::{parse, Encode, HitokotoQuery};
use crate::api::request::{HttpResponse, Request};
use crate::api::response::{bad_parameter, body, error, JAVASCRIPT, JSON, TEXT};
use crate::config::ReadMode;
use crate::node::Node;
use crate::store::queries;
use crate::store::sentence::{js_body, json_body, plain_body};
use crate::store::snapshot::Source;

/// The three bodies of one sentence (only the one asked for is built when
/// it comes from a query).
struct Bodies {
    plain: Bytes,
    json: Bytes,
    js: Bytes,
}

fn render(q: &HitokotoQuery, b: Bodies) -> HttpResponse {
    if let Some(callback) = &q.callback {
        let mut out = BytesMut::with_capacity(callback.len() + b.json.len() + 3);
        out.put_slice(callback.as_bytes());
        out.put_u8(b'(');
        out.put_slice(&b.json);
        out.put_slice(b");");
        return body(StatusCode::OK, JAVASCRIPT, out.freeze());
    }
    match q.encode {
        Encode::Text => body(StatusCode::OK, TEXT, b.plain),
        Encode::Json => body(StatusCode::OK, JSON, b.json),
        Encode::Js => body(StatusCode::OK, JAVASCRIPT, b.js),
    }
}

fn no_match() -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no sentence matches the given parameters",
    )
}

fn from_snapshot(node: &Node, q: &HitokotoQuery, rng: &mut fastrand::Rng) -> HttpResponse {
    let snapshot = node.corpus.load();
    match snapshot.pick(&q.filter, rng) {
        Some(e) => render(
            q,
            Bodies {
                plain: e.plain.clone(),
                json: e.json.clone(),
                js: e.js.clone(),
            },
        ),
        None => no_match(),
    }
}

/// Answers `GET /hitokoto/v2/`.
///
/// A snapshot read never waits; a query read is boxed, so that the
/// future of every read is not the size of a PostgreSQL query's.
pub(crate) async fn get(node: &Node, request: &Request, rng: &mut fastrand::Rng) -> HttpResponse {
    let q = match parse(request.parts.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad_parameter(e.parameter, &e.message),
    };
    if node.with_config(|c| c.postgres.reads) == ReadMode::Snapshot {
        return from_snapshot(node, &q, rng);
    }
    Box::pin(from_query(node, q, rng)).await
}

/// A read from PostgreSQL (`postgres.reads = "query"`), falling back to
/// the snapshot when it fails.
async fn from_query(node: &Node, q: HitokotoQuery, rng: &mut fastrand::Rng) -> HttpResponse {
    let filter = q.filter;
    let candidate = {
        let snapshot = node.corpus.load();
        match snapshot.source() {
            Source::Postgres { .. } => snapshot.pick(&filter, rng).map(|e| e.uuid),
            Source::Embedded => None,
        }
    };
    let picked = node
        .pg
        .read(async |client, statements| queries::read(client, statements, candidate, &filter).await)
        .await;
    match picked {
        Ok(Some((text, from))) => {
            let empty = Bytes::new();
            let bodies = match (q.callback.is_some(), q.encode) {
                (true, _) | (false, Encode::Json) => Bodies {
                    plain: empty.clone(),
                    json: json_body(&text, &from),
                    js: empty,
                },
                (false, Encode::Text) => Bodies {
                    plain: plain_body(&text, &from),
                    json: empty.clone(),
                    js: empty,
                },
                (false, Encode::Js) => Bodies {
                    plain: empty.clone(),
                    json: empty,
                    js: js_body(&text, &from),
                },
            };
            render(&q, bodies)
        }
        // An empty table: the snapshot serves the embedded corpus.
        Ok(None) if *node.corpus.load().source() == Source::Embedded => from_snapshot(node, &q, rng),
        Ok(None) => no_match(),
        Err(e) => {
            tracing::debug!(error = %e, "query read failed; answering from the snapshot");
            from_snapshot(node, &q, rng)
        }
    }
}
