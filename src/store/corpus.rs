//! The corpus actor (`diem/store/corpus`): keeps the in-memory snapshot
//! equal to the sentences in PostgreSQL.
//!
//! It holds its own PostgreSQL connection (outside the pool: LISTEN needs a
//! connection that stays), listens on `<schema>.sentences`, loads the whole
//! table into a new [`Snapshot`] and publishes it in [`CorpusShared`]. A
//! notification (sent by a trigger on every change, from any node) triggers
//! a reload after a 20 ms pause that gathers bursts. When the connection
//! drops it reconnects with a backoff and reloads in full, since
//! notifications sent meanwhile are lost.
//!
//! The published snapshot lives in the node, not in the actor: while the
//! actor restarts, or PostgreSQL is down, reads go on from the last
//! snapshot. Until a PostgreSQL snapshot has been loaded (or while the
//! table is empty) the embedded corpus is served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio_postgres::{AsyncMessage, Client};

use crate::node::Node;
use crate::store::snapshot::{Snapshot, Source};
use crate::store::{embedded, postgres_pool, queries, StoreError};

const DEBOUNCE: Duration = Duration::from_millis(20);

/// The published corpus and the corpus actor's view of PostgreSQL.
#[derive(Debug)]
pub struct CorpusShared {
    snapshot: ArcSwap<Snapshot>,
    listening: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Default for CorpusShared {
    fn default() -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::build(embedded::sentences(), Source::Embedded)),
            listening: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }
}

/// What `stats` and `/readyz` report about the corpus.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusStatus {
    /// Where the served sentences come from.
    pub source: Source,
    /// How many there are.
    pub sentences: usize,
    /// Whether the actor is connected and listening for changes.
    pub listening: bool,
    /// The last error, if any.
    pub error: Option<String>,
}

impl CorpusShared {
    /// The snapshot reads are served from (one atomic load).
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The corpus's state.
    pub fn status(&self) -> CorpusStatus {
        let s = self.snapshot.load();
        CorpusStatus {
            source: s.source().clone(),
            sentences: s.len(),
            listening: self.listening.load(Ordering::Acquire),
            error: self.error.lock().ok().and_then(|e| e.clone()),
        }
    }

    fn set_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.error.lock() {
            *e = error;
        }
    }
}

/// Messages of the corpus actor.
#[derive(Debug)]
pub enum CorpusMsg {
    /// (Re)connect and listen.
    Connect,
    /// PostgreSQL says the sentences changed.
    Changed,
    /// Load the whole table now.
    Reload,
    /// The listening connection of this generation ended.
    Disconnected(u64, String),
}

/// The corpus actor.
#[derive(Debug)]
pub struct Corpus {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// The corpus actor's state.
#[derive(Debug)]
pub struct CorpusState {
    client: Option<Client>,
    generation: u64,
    reload_pending: bool,
    backoff: Duration,
}

impl Corpus {
    async fn connect(&self, myself: &ActorRef<CorpusMsg>, generation: u64) -> Result<Client, StoreError> {
        let cfg = self.node.config().postgres.clone();
        let config = postgres_pool::pg_config(&cfg)?;
        let deadline = Duration::from_millis(cfg.connect_timeout_ms);
        let (client, mut connection) = tokio::time::timeout(deadline, config.connect(tokio_postgres::NoTls))
            .await
            .map_err(|_| StoreError::Unavailable(format!("no answer within {deadline:?}")))??;
        // Drive the connection and turn notifications into messages. The
        // task ends with the connection, or when this incarnation is gone.
        let me = myself.clone();
        tokio::spawn(async move {
            let reason = loop {
                match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => {
                        if me.send_message(CorpusMsg::Changed).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                    None => break "connection closed".to_owned(),
                }
            };
            let _ = me.send_message(CorpusMsg::Disconnected(generation, reason));
        });
        let channel = format!("{}.sentences", cfg.schema);
        let statement = format!("LISTEN \"{channel}\"");
        let listen = client.batch_execute(&statement);
        tokio::time::timeout(deadline, listen)
            .await
            .map_err(|_| StoreError::Unavailable(format!("no answer within {deadline:?}")))??;
        Ok(client)
    }

    async fn reload(&self, client: &Client) -> Result<(), StoreError> {
        let cfg = self.node.config().postgres.clone();
        let deadline = Duration::from_millis(cfg.connect_timeout_ms + cfg.statement_timeout_ms);
        let sentences = tokio::time::timeout(deadline, queries::all_sentences(client))
            .await
            .map_err(|_| StoreError::Unavailable(format!("no answer within {deadline:?}")))??;
        let count = sentences.len();
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
        self.node.corpus.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    fn lost(&self, myself: &ActorRef<CorpusMsg>, state: &mut CorpusState, reason: String) {
        tracing::warn!(%reason, "corpus lost its postgres connection; serving the last snapshot");
        self.node.corpus.listening.store(false, Ordering::Release);
        self.node.corpus.set_error(Some(reason));
        state.client = None;
        let retry_max = Duration::from_millis(self.node.config().postgres.retry_max_ms);
        let wait = state.backoff;
        state.backoff = (wait * 2).min(retry_max);
        myself.send_after(wait, || CorpusMsg::Connect);
    }
}

impl Actor for Corpus {
    type Msg = CorpusMsg;
    type State = CorpusState;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<CorpusMsg>, _: ()) -> Result<CorpusState, ActorProcessingErr> {
        myself.send_message(CorpusMsg::Connect)?;
        Ok(CorpusState {
            client: None,
            generation: 0,
            reload_pending: false,
            backoff: Duration::from_millis(100),
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
                    // table may not exist. Ask again shortly.
                    myself.send_after(Duration::from_millis(50), || CorpusMsg::Connect);
                    return Ok(());
                }
                state.generation += 1;
                match self.connect(&myself, state.generation).await {
                    Ok(client) => {
                        state.client = Some(client);
                        self.node.corpus.listening.store(true, Ordering::Release);
                        self.node.corpus.set_error(None);
                        state.backoff = Duration::from_millis(100);
                        myself.send_message(CorpusMsg::Reload)?;
                    }
                    Err(e) => self.lost(&myself, state, e.to_string()),
                }
            }
            CorpusMsg::Changed => {
                if !state.reload_pending {
                    state.reload_pending = true;
                    myself.send_after(DEBOUNCE, || CorpusMsg::Reload);
                }
            }
            CorpusMsg::Reload => {
                state.reload_pending = false;
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
        self.node.corpus.listening.store(false, Ordering::Release);
        Ok(())
    }
}
