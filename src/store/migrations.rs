//! Versioned schema migrations, embedded in the binary.
//!
//! Applied by `diem migrate` and at the start of `diem serve`, in one
//! transaction holding a transaction-scoped advisory lock, so several nodes
//! starting at once apply each migration exactly once: the first takes the
//! lock and migrates, the others wait for it and then find nothing to do.
//! Applied versions are recorded in `diem_migrations`.

use tokio_postgres::Client;

use crate::store::StoreError;

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, increasing from 1.
    pub version: i32,
    /// Short name.
    pub name: &'static str,
    /// The SQL, run with `search_path` set to the configured schema.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "sentences",
        sql: include_str!("migrations/0001_sentences.sql"),
    },
    Migration {
        version: 2,
        name: "notify",
        sql: include_str!("migrations/0002_notify.sql"),
    },
    Migration {
        version: 3,
        name: "notify_rows",
        sql: include_str!("migrations/0003_notify_rows.sql"),
    },
];

/// The advisory-lock key of a schema's migrations (stable across builds:
/// FNV-1a of `diem:migrate:<schema>`).
pub fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"diem:migrate:".iter().chain(schema.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// Applies the missing migrations to `schema` (an identifier checked by the
/// config). Returns the versions applied now.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<Vec<i32>, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS diem_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM diem_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| StoreError::Other(format!("migration {} ({}) failed: {e}", m.version, m.name)))?;
        tx.execute(
            "INSERT INTO diem_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        applied.push(m.version);
    }
    tx.commit().await?;
    Ok(applied)
}
