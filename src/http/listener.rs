//! The HTTP listener actor (`diem/listener`): accepts connections and
//! starts a connection task for each. Nothing else.
//!
//! It accepts on a duplicate of the node's listening socket (see
//! [`socket`](super::socket)), so a restart loses no connection. The accept
//! loop runs as a task owned by the actor: it is aborted when the actor
//! stops, and if it ends by itself (which it should not) the actor crashes,
//! so that its supervisor restarts it. Connection tasks are not the
//! listener's children: they keep serving while it restarts and are drained
//! on shutdown. At most `http.max_connections` are open at once; further
//! clients wait in the backlog.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;

use crate::http::connection;
use crate::node::Node;
use crate::owned_task::OwnedTask;

/// Messages of the listener.
#[derive(Debug, RactorMessage)]
pub(crate) enum ListenerMsg {
    /// The accept loop ended (a crash of the listener).
    LoopEnded(String),
}

/// The listener actor.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// The listener's state: its accept loop.
#[derive(Debug)]
pub(crate) struct ListenerState {
    _accept: OwnedTask,
}

async fn accept_loop(node: Arc<Node>, tcp: tokio::net::TcpListener) {
    let slots = node.http.slots();
    node.http.gate_opened().await;
    loop {
        let permit = match &slots {
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    // At http.max_connections: the next clients wait in the
                    // backlog until a connection closes.
                    node.metrics.rejected("connection_limit");
                    if node.http.may_log_rejection() {
                        tracing::info!("at http.max_connections: new connections wait in the backlog");
                    }
                    s.clone().acquire_owned().await.ok()
                }
            },
            None => None,
        };
        match tcp.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection::serve(node.clone(), stream, peer, permit));
            }
            Err(e) => {
                // Out of file descriptors, a connection reset before accept:
                // none of these is the listener's fault. Pause and go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

impl Actor for Listener {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ListenerMsg>,
        _: (),
    ) -> Result<ListenerState, ActorProcessingErr> {
        let tcp = self.node.http.listener()?;
        let addr = tcp.local_addr()?;
        tracing::info!("listening on {addr}");
        let accept = OwnedTask::spawn(accept_loop(self.node.clone(), tcp), move || {
            let _ = myself.send_message(ListenerMsg::LoopEnded("the accept loop ended".into()));
        });
        Ok(ListenerState { _accept: accept })
    }

    async fn handle(
        &self,
        _: ActorRef<ListenerMsg>,
        msg: ListenerMsg,
        _: &mut ListenerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ListenerMsg::LoopEnded(reason) => Err(reason.into()),
        }
    }
}
