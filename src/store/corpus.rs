//! The corpus actor (`diem/store/corpus`): keeps the in-memory snapshot
//! equal to the sentences in PostgreSQL.
//!
//! It holds its own PostgreSQL connection (outside the pool: LISTEN needs a
//! connection that stays), listens on `<schema>.sentences`, loads the whole
//! table into a new [`Snapshot`] and publishes it in the node's
//! [`CorpusShared`](crate::store::corpus_shared::CorpusShared). A trigger
//! notifies every changed row, from any node (`INSERT <uuid>`, `DELETE
//! <uuid>`…); after a 20 ms pause that gathers bursts the actor reads those
//! rows only (`WHERE uuid = ANY(…)`: one row read per written row per
//! node) and applies them to the snapshot — or reloads in full after a
//! `TRUNCATE`, a burst of more than [`ROWS_AT_ONCE`] rows (an import), or
//! a notification it cannot read. When the connection drops it reconnects
//! with a backoff and reloads in full, since notifications sent meanwhile
//! are lost.
//!
//! The table exists once the pool actor has applied the migrations: the
//! corpus waits for that ([`PgShared::ready`]) before it connects — a
//! dependency stated, not polled.
//!
//! [`PgShared::ready`]: crate::store::pg_shared::PgShared::ready

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use supervisors::{Backoff, Counted};
use tokio_postgres::{AsyncMessage, Client};

use crate::node::Node;
use crate::owned_task::OwnedTask;
use crate::store::connection::connect;
use crate::store::snapshot::{Snapshot, Source};
use crate::store::{embedded, queries, within, StoreError};

const DEBOUNCE: Duration = Duration::from_millis(20);

/// The most changed rows read one by one; more reload the whole table.
pub(crate) const ROWS_AT_ONCE: usize = 256;

/// What a notification says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// One row (`INSERT`, `UPDATE`, `DELETE` and its uuid).
    Row(uuid::Uuid),
    /// Anything: reload in full (`TRUNCATE`, or a payload of another form).
    All,
}

impl Change {
    /// The change a notification's payload names.
    pub(crate) fn of(payload: &str) -> Change {
        match payload.split_once(' ') {
            Some(("INSERT" | "UPDATE" | "DELETE", id)) => id.parse().map_or(Change::All, Change::Row),
            _ => Change::All,
        }
    }
}

/// Messages of the corpus actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum CorpusMsg {
    /// (Re)connect and listen, once the schema is migrated.
    Connect,
    /// PostgreSQL says the sentences changed.
    Changed(Change),
    /// Apply what changed (after the pause that gathers a burst).
    Apply,
    /// Load the whole table now.
    Reload,
    /// The listening connection of this generation ended.
    Disconnected(u64, String),
}

/// The corpus actor.
#[derive(Debug)]
pub(crate) struct Corpus {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// The corpus actor's state.
#[derive(Debug)]
pub(crate) struct CorpusState {
    client: Option<Client>,
    generation: u64,
    reload_pending: bool,
    /// Rows notified since the last apply.
    changed: std::collections::HashSet<uuid::Uuid>,
    /// Whether something since the last apply needs a whole reload.
    changed_all: bool,
    failures: u32,
    waiting: Option<OwnedTask>,
}

impl Corpus {
    async fn connect(&self, myself: &ActorRef<CorpusMsg>, generation: u64) -> Result<Client, StoreError> {
        let cfg = self.node.config().postgres.clone();
        let (client, mut connection) = connect(&cfg).await?;
        // Drive the connection and turn notifications into messages. The
        // task ends with the connection, or when this incarnation is gone.
        let me = Counted::of(myself.clone());
        tokio::spawn(async move {
            let reason = loop {
                match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if me.send(CorpusMsg::Changed(Change::of(n.payload()))).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                    None => break "connection closed".to_owned(),
                }
            };
            let _ = me.send(CorpusMsg::Disconnected(generation, reason));
        });
        let listen = format!("LISTEN \"{}.sentences\"", cfg.schema);
        within(cfg.connect_timeout.get(), async {
            Ok(client.batch_execute(&listen).await?)
        })
        .await?;
        Ok(client)
    }

    async fn reload(&self, client: &Client) -> Result<(), StoreError> {
        let deadline = self.node.config().postgres.query_deadline();
        let started = Instant::now();
        let sentences = within(deadline, async { Ok(queries::all_sentences(client).await?) }).await?;
        let count = sentences.len();
        self.node.corpus.count_read(count, true);
        // Building renders three bodies per sentence: off the async threads.
        let snapshot = tokio::task::spawn_blocking(move || {
            if sentences.is_empty() {
                Snapshot::build(embedded::sentences(), Source::Embedded)
            } else {
                Snapshot::build(sentences, Source::postgres_now())
            }
        })
        .await
        .map_err(|e| StoreError::Other(format!("building the snapshot failed: {e}")))?;
        if count == 0 {
            tracing::warn!("the sentences table is empty: serving the embedded corpus");
        } else {
            tracing::info!(sentences = count, "corpus loaded from postgres");
        }
        self.node.corpus.publish_loaded(snapshot, started);
        Ok(())
    }

    /// Reads the rows of `uuids` and applies them: each row present
    /// replaces (or adds) its sentence, each one missing was deleted. A
    /// snapshot left empty is loaded in full (the embedded corpus then
    /// stands in).
    async fn apply_rows(&self, client: &Client, uuids: &[uuid::Uuid]) -> Result<(), StoreError> {
        let deadline = self.node.config().postgres.query_deadline();
        let started = Instant::now();
        let rows = within(deadline, async { Ok(queries::by_uuids(client, uuids).await?) }).await?;
        self.node.corpus.count_read(rows.len(), false);
        let present: std::collections::HashSet<uuid::Uuid> = rows.iter().map(|s| s.uuid).collect();
        let removed: Vec<uuid::Uuid> = uuids.iter().filter(|u| !present.contains(u)).copied().collect();
        tracing::debug!(
            changed = rows.len(),
            removed = removed.len(),
            "corpus: applying notified rows"
        );
        self.node.corpus.publish_changes(rows, &removed, started);
        if self.node.corpus.load().is_empty() {
            return self.reload(client).await;
        }
        Ok(())
    }

    fn lost(&self, myself: &ActorRef<CorpusMsg>, state: &mut CorpusState, reason: String) {
        tracing::warn!(%reason, "corpus lost its postgres connection; serving the last snapshot");
        self.node.corpus.set_listening(false, Some(reason));
        state.client = None;
        state.failures = state.failures.saturating_add(1);
        let retry_max = self.node.config().postgres.retry_max;
        let wait = Backoff::new(Duration::from_millis(100), retry_max.get()).delay(state.failures);
        Counted::of(myself.clone()).send_after(wait, || CorpusMsg::Connect);
    }
}

impl Actor for Corpus {
    type Msg = CorpusMsg;
    type State = CorpusState;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<CorpusMsg>, _: ()) -> Result<CorpusState, ActorProcessingErr> {
        Counted::of(myself.clone()).send(CorpusMsg::Connect)?;
        Ok(CorpusState {
            client: None,
            generation: 0,
            reload_pending: false,
            changed: std::collections::HashSet::new(),
            changed_all: false,
            failures: 0,
            waiting: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CorpusMsg>,
        msg: CorpusMsg,
        state: &mut CorpusState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CorpusMsg::Connect => {
                if state.client.is_some() {
                    return Ok(());
                }
                if !self.node.pg.is_ready() {
                    // The pool actor applies the migrations; until then the
                    // table may not exist. Connect once it says ready.
                    let mut ready = self.node.pg.ready();
                    let me = Counted::of(myself.clone());
                    state.waiting = Some(OwnedTask::spawn(
                        async move {
                            if ready.wait_for(|r| *r).await.is_ok() {
                                let _ = me.send(CorpusMsg::Connect);
                            }
                        },
                        || {},
                    ));
                    return Ok(());
                }
                state.waiting = None;
                state.generation += 1;
                match self.connect(&myself, state.generation).await {
                    Ok(client) => {
                        state.client = Some(client);
                        self.node.corpus.set_listening(true, None);
                        state.failures = 0;
                        Counted::of(myself.clone()).send(CorpusMsg::Reload)?;
                    }
                    Err(e) => self.lost(&myself, state, e.to_string()),
                }
            }
            CorpusMsg::Changed(change) => {
                match change {
                    Change::Row(uuid) if state.changed.len() < ROWS_AT_ONCE => {
                        state.changed.insert(uuid);
                    }
                    _ => state.changed_all = true,
                }
                if !state.reload_pending {
                    state.reload_pending = true;
                    Counted::of(myself.clone()).send_after(DEBOUNCE, || CorpusMsg::Apply);
                }
            }
            CorpusMsg::Apply => {
                state.reload_pending = false;
                let rows: Vec<uuid::Uuid> = state.changed.drain().collect();
                let all = std::mem::take(&mut state.changed_all)
                    // The embedded corpus stands in for an empty table: the
                    // first row replaces all of it.
                    || self.node.corpus.load().source() == &Source::Embedded;
                let Some(client) = &state.client else {
                    return Ok(());
                };
                let applied = if all {
                    self.reload(client).await
                } else {
                    self.apply_rows(client, &rows).await
                };
                if let Err(e) = applied {
                    self.lost(&myself, state, e.to_string());
                }
            }
            CorpusMsg::Reload => {
                state.reload_pending = false;
                state.changed.clear();
                state.changed_all = false;
                let Some(client) = &state.client else {
                    return Ok(());
                };
                if let Err(e) = self.reload(client).await {
                    self.lost(&myself, state, e.to_string());
                }
            }
            CorpusMsg::Disconnected(generation, reason) => {
                if state.client.is_some() && generation == state.generation {
                    self.lost(&myself, state, reason);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<CorpusMsg>, _: &mut CorpusState) -> Result<(), ActorProcessingErr> {
        self.node.corpus.set_listening(false, None);
        Ok(())
    }
}
