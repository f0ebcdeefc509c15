//! `diem import DIR`: load a sentences-bundle into PostgreSQL.
//!
//! The whole bundle is read and checked first (a malformed file or entry
//! is rejected with its file and position, and nothing is written), then
//! upserted by uuid in one transaction, in chunks of 1,000 rows, each chunk
//! one `INSERT … SELECT FROM unnest(…) ON CONFLICT (uuid) DO UPDATE … WHERE
//! … IS DISTINCT FROM …`, so that importing the same bundle twice changes
//! nothing and the summary can tell inserted, updated and unchanged rows
//! apart. With `--prune`, the sentences of the bundle's categories that the
//! bundle no longer has are deleted in the same transaction (other
//! categories, and sentences written through the API into them, are left
//! alone only if the bundle does not cover their category). Running nodes
//! reload their snapshot on the commit (the trigger notifies them).

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::config::PostgresConfig;
use crate::store::bundle::read_bundle;
use crate::store::sentence::Sentence;
use crate::store::{connection, migrations, StoreError};

const CHUNK: usize = 1_000;

const UPSERT: &str = "INSERT INTO sentences (uuid, id, hitokoto, type, \"from\", from_who, creator, length, created_at) \
    SELECT u, i, h, t, f, w, c, l, to_timestamp(ca) \
    FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[]) \
         AS x(u, i, h, t, f, w, c, l, ca) \
    ON CONFLICT (uuid) DO UPDATE SET id = EXCLUDED.id, hitokoto = EXCLUDED.hitokoto, type = EXCLUDED.type, \
        \"from\" = EXCLUDED.\"from\", from_who = EXCLUDED.from_who, creator = EXCLUDED.creator, \
        length = EXCLUDED.length, created_at = EXCLUDED.created_at \
    WHERE (sentences.id, sentences.hitokoto, sentences.type, sentences.\"from\", sentences.from_who, \
           sentences.creator, sentences.length, sentences.created_at) \
      IS DISTINCT FROM (EXCLUDED.id, EXCLUDED.hitokoto, EXCLUDED.type, EXCLUDED.\"from\", EXCLUDED.from_who, \
           EXCLUDED.creator, EXCLUDED.length, EXCLUDED.created_at) \
    RETURNING (xmax = 0)";

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Category files read.
    pub files: usize,
    /// Sentences in the bundle.
    pub total: usize,
    /// New rows.
    pub inserted: usize,
    /// Rows that existed with other values.
    pub updated: usize,
    /// Rows that existed with the same values.
    pub unchanged: usize,
    /// Rows of the bundle's categories the bundle no longer has, deleted
    /// (`--prune` only).
    pub deleted: usize,
}

fn db_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Other(format!(
            "postgres rejected the import: {}{}",
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        )),
        None => e.into(),
    }
}

async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    chunk: &[Sentence],
) -> Result<(usize, usize), StoreError> {
    let col = |f: &dyn Fn(&Sentence) -> String| chunk.iter().map(f).collect::<Vec<String>>();
    let uuids: Vec<uuid::Uuid> = chunk.iter().map(|s| s.uuid).collect();
    let ids: Vec<i64> = chunk.iter().map(|s| s.id).collect();
    let texts = col(&|s| s.hitokoto.clone());
    let types = col(&|s| s.category.to_string());
    let froms = col(&|s| s.from.clone());
    let whos: Vec<Option<String>> = chunk.iter().map(|s| s.from_who.clone()).collect();
    let creators = col(&|s| s.creator.clone());
    let lengths: Vec<i32> = chunk.iter().map(|s| s.length).collect();
    let created: Vec<i64> = chunk.iter().map(|s| s.created_at).collect();
    let rows = tx
        .query(
            UPSERT,
            &[
                &uuids, &ids, &texts, &types, &froms, &whos, &creators, &lengths, &created,
            ],
        )
        .await
        .map_err(db_error)?;
    let inserted = rows.iter().filter(|r| r.get::<_, bool>(0)).count();
    Ok((inserted, rows.len() - inserted))
}

const PRUNE: &str = "DELETE FROM sentences WHERE type = ANY($1::text[]) AND NOT (uuid = ANY($2::uuid[]))";

/// Imports the bundle in `dir` into the schema of `cfg` (migrating it
/// first), deleting with `prune` what the bundle's categories no longer
/// hold. Shows a progress bar when stderr is a terminal.
pub async fn import(cfg: &PostgresConfig, dir: &Path, prune: bool) -> Result<ImportSummary, StoreError> {
    let bundle = read_bundle(dir, |_| {})?;
    let mut client = connection::connect_detached(cfg).await?;
    migrations::migrate(&mut client, &cfg.schema).await?;
    let bar = ProgressBar::new(bundle.sentences.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} sentences")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("importing");
    let mut summary = ImportSummary {
        files: bundle.files,
        total: bundle.sentences.len(),
        ..ImportSummary::default()
    };
    let tx = client.transaction().await?;
    for chunk in bundle.sentences.chunks(CHUNK) {
        let (inserted, updated) = upsert(&tx, chunk).await?;
        summary.inserted += inserted;
        summary.updated += updated;
        bar.inc(chunk.len() as u64);
    }
    if prune {
        let mut categories: Vec<String> = bundle.sentences.iter().map(|s| s.category.to_string()).collect();
        categories.sort_unstable();
        categories.dedup();
        let uuids: Vec<uuid::Uuid> = bundle.sentences.iter().map(|s| s.uuid).collect();
        let deleted = tx
            .execute(PRUNE, &[&categories, &uuids])
            .await
            .map_err(db_error)?;
        summary.deleted = usize::try_from(deleted).unwrap_or(usize::MAX);
    }
    tx.commit().await.map_err(db_error)?;
    // Fresh statistics, so the first queries after a large import are planned well.
    client.batch_execute("ANALYZE sentences").await?;
    bar.finish_and_clear();
    summary.unchanged = summary.total - summary.inserted - summary.updated;
    Ok(summary)
}
