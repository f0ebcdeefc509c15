//! The SQL diem runs, in one place.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

use crate::store::sentence::Sentence;
use crate::store::snapshot::Filter;

const ALL: &str = "SELECT id, uuid, hitokoto, type, \"from\", from_who, creator, length, \
                   extract(epoch FROM created_at)::bigint FROM sentences ORDER BY id";

/// Uniform random pick among the matching rows: count them, skip a random
/// number of them (both served by the (type, length) index). Linear in the
/// number of matching rows — which is why reads come from the snapshot by
/// default (docs/benchmarks.md has both measured).
const PICK: &str = "SELECT hitokoto, \"from\" FROM sentences \
                    WHERE (cardinality($1::text[]) = 0 OR type = ANY($1)) AND length BETWEEN $2 AND $3 \
                    OFFSET floor(random() * (SELECT count(*) FROM sentences \
                      WHERE (cardinality($1::text[]) = 0 OR type = ANY($1)) AND length BETWEEN $2 AND $3))::bigint \
                    LIMIT 1";

/// One sentence by primary key, if it (still) matches the filter.
const FETCH: &str = "SELECT hitokoto, \"from\" FROM sentences \
                     WHERE uuid = $1 AND (cardinality($2::text[]) = 0 OR type = ANY($2)) AND length BETWEEN $3 AND $4";

const INSERT: &str = "INSERT INTO sentences (uuid, id, hitokoto, type, \"from\", from_who, creator, length) \
                      VALUES ($1, nextval('sentences_api_id'), $2, $3, $4, $5, $6, $7) \
                      RETURNING id, extract(epoch FROM created_at)::bigint";

const DELETE: &str = "DELETE FROM sentences WHERE uuid = $1";

const BY_UUID: &str = "SELECT id, uuid, hitokoto, type, \"from\", from_who, creator, length, \
                       extract(epoch FROM created_at)::bigint FROM sentences WHERE uuid = $1";

const BY_UUIDS: &str = "SELECT id, uuid, hitokoto, type, \"from\", from_who, creator, length, \
                        extract(epoch FROM created_at)::bigint FROM sentences WHERE uuid = ANY($1)";

fn sentence(row: &Row) -> Sentence {
    let category: String = row.get(3);
    Sentence {
        id: row.get(0),
        uuid: row.get(1),
        hitokoto: row.get(2),
        category: category.chars().next().unwrap_or('g'),
        from: row.get(4),
        from_who: row.get(5),
        creator: row.get(6),
        length: row.get(7),
        created_at: row.get::<_, Option<i64>>(8).unwrap_or_default(),
    }
}

/// The sentences of `uuids` that exist (a uuid missing was deleted).
pub(crate) async fn by_uuids(
    client: &Client,
    uuids: &[Uuid],
) -> Result<Vec<Sentence>, tokio_postgres::Error> {
    Ok(client
        .query(BY_UUIDS, &[&uuids])
        .await?
        .iter()
        .map(sentence)
        .collect())
}

/// Every sentence, by id.
pub(crate) async fn all_sentences(client: &Client) -> Result<Vec<Sentence>, tokio_postgres::Error> {
    Ok(client.query(ALL, &[]).await?.iter().map(sentence).collect())
}

fn length_bound(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn categories(filter: &Filter) -> Vec<String> {
    crate::store::sentence::Category::all()
        .filter(|c| filter.categories & (1 << c.index()) != 0)
        .map(|c| c.key().to_string())
        .collect()
}

/// The statements of a read, prepared on the connection that runs them.
#[derive(Debug)]
pub(crate) struct ReadStatements {
    fetch: Statement,
    pick: Statement,
}

impl ReadStatements {
    /// Prepares them on `client`.
    pub(crate) async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            fetch: client.prepare(FETCH).await?,
            pick: client.prepare(PICK).await?,
        })
    }

    /// The same, from `client`'s statement cache (a pooled connection).
    pub(crate) async fn cached(client: &ClientWrapper) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            fetch: client.prepare_cached(FETCH).await?,
            pick: client.prepare_cached(PICK).await?,
        })
    }
}

/// A `(hitokoto, from)` that `filter` accepts: `candidate` (a sentence the
/// snapshot picked) read by primary key as PostgreSQL holds it now, or, if
/// there is none or it no longer matches, one PostgreSQL picks (a count and
/// an offset: linear in the matching rows).
pub(crate) async fn read(
    client: &Client,
    statements: &ReadStatements,
    candidate: Option<Uuid>,
    filter: &Filter,
) -> Result<Option<(String, String)>, tokio_postgres::Error> {
    let categories = categories(filter);
    let (min, max) = (length_bound(filter.min_len), length_bound(filter.max_len));
    if let Some(uuid) = candidate {
        let row = client
            .query_opt(&statements.fetch, &[&uuid, &categories, &min, &max])
            .await?;
        if let Some(row) = row {
            return Ok(Some((row.get(0), row.get(1))));
        }
    }
    let row = client
        .query_opt(&statements.pick, &[&categories, &min, &max])
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Inserts a new sentence (its `id` and `created_at` are assigned here) and
/// returns it as stored.
pub(crate) async fn insert(
    client: &ClientWrapper,
    mut s: Sentence,
) -> Result<Sentence, tokio_postgres::Error> {
    let statement = client.prepare_cached(INSERT).await?;
    let row = client
        .query_one(
            &statement,
            &[
                &s.uuid,
                &s.hitokoto,
                &s.category.to_string(),
                &s.from,
                &s.from_who,
                &s.creator,
                &s.length,
            ],
        )
        .await?;
    s.id = row.get(0);
    s.created_at = row.get::<_, Option<i64>>(1).unwrap_or_default();
    Ok(s)
}

/// The sentence with this uuid, if any (by primary key).
pub(crate) async fn by_uuid(
    client: &ClientWrapper,
    uuid: Uuid,
) -> Result<Option<Sentence>, tokio_postgres::Error> {
    let statement = client.prepare_cached(BY_UUID).await?;
    Ok(client
        .query_opt(&statement, &[&uuid])
        .await?
        .as_ref()
        .map(sentence))
}

/// Deletes a sentence; whether it existed.
pub(crate) async fn delete(client: &ClientWrapper, uuid: Uuid) -> Result<bool, tokio_postgres::Error> {
    let statement = client.prepare_cached(DELETE).await?;
    Ok(client.execute(&statement, &[&uuid]).await? > 0)
}
