//! The cluster server actor (`diem/cluster/server`): owns ractor_cluster's
//! `NodeServer` — the cluster listener, the cookie challenge, one session
//! per member — and publishes it for the other cluster actors.
//!
//! Without TLS the node server is created in `Transitive` mode,
//! explicitly (`NodeServer::new(.., None)` would pick `Isolated`): a node
//! that joins through one member learns every member that one knows. Its
//! session events go to the membership actor through the node's
//! [`ClusterShared`](super::shared::ClusterShared).
//!
//! With TLS (`cluster.tls_cert`, `tls_key`, `tls_ca`) ractor_cluster's
//! transitive connections would dial plain TCP, so the node server runs
//! `Isolated` and the membership actor learns the members from the others
//! instead (it asks each for the members it knows; peer actors dial them
//! with TLS). The node server then listens on an internal loopback port,
//! TLS too, and the [`tls_listener`](super::tls_listener) owns the cluster
//! port; this member names itself `name@host:port`, its advertised
//! address, because the address ractor_cluster derives from its own port
//! would be the internal one.
//!
//! A listener address in use (another process, or the previous process
//! during an upgrade hand-over) does not fail the node's start: the actor
//! keeps trying with a backoff and the node serves meanwhile. If the node
//! server dies, this actor crashes, and its `rest_for_one` supervisor
//! restarts it and everything that depends on it.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{
    IncomingEncryptionMode, NodeEventSubscription, NodeServer, NodeServerMessage, RactorMessage,
};
use supervisors::Backoff;

use crate::cluster::shared::{session_addr, session_member, SessionEvent};
use crate::cluster::tls::ClusterTls;
use crate::node::Node;

/// Messages of the cluster server actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum ServerMsg {
    /// Start (or retry starting) the node server.
    Start,
}

/// The cluster server actor.
#[derive(Debug)]
pub(crate) struct ClusterServer {
    /// The node it serves.
    pub(crate) node: Arc<Node>,
}

/// Its state: the node server, once it runs.
#[derive(Debug)]
pub(crate) struct ServerState {
    server: Option<ActorRef<NodeServerMessage>>,
    failures: u32,
}

/// Forwards the node server's session events to the node.
struct Forward(Arc<Node>);

impl NodeEventSubscription for Forward {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.0.cluster.report(SessionEvent::Opened {
            session: ses.actor.clone(),
            peer_addr: ses.peer_addr.clone(),
        });
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.0.cluster.report(SessionEvent::Closed {
            name: session_member(&ses),
            peer_addr: ses.peer_addr.clone(),
            session: ses.actor.get_id(),
        });
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        self.0.cluster.report(SessionEvent::Authenticated {
            session: ses.actor.get_id(),
        });
    }

    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        if let (Some(name), Some(addr)) = (session_member(&ses), session_addr(&ses)) {
            self.0.cluster.report(SessionEvent::Ready {
                name,
                addr,
                session: ses.actor.clone(),
            });
        }
    }
}

impl ClusterServer {
    async fn start(
        &self,
        myself: &ActorRef<ServerMsg>,
    ) -> Result<(ActorRef<NodeServerMessage>, Option<ClusterTls>), ActorProcessingErr> {
        let config = self.node.config();
        let c = &config.cluster;
        let cookie = c.read_cookie()?;
        let advertised = c.advertised();
        let tls = ClusterTls::from_config(c)?;
        let server = match &tls {
            None => {
                let host = advertised
                    .rsplit_once(':')
                    .map_or(advertised.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                NodeServer::new(
                    c.listen.port(),
                    cookie,
                    c.member_name(&config.node),
                    host.to_owned(),
                    None,
                    Some(NodeConnectionMode::Transitive),
                )
                .with_listen_addr(c.listen.ip())
            }
            Some(tls) => NodeServer::new(
                0,
                cookie,
                c.member_name(&config.node),
                advertised,
                Some(IncomingEncryptionMode::Tls(tls.acceptor.clone())),
                Some(NodeConnectionMode::Isolated),
            )
            .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into()),
        };
        let (server, _) = Actor::spawn_linked(None, server, (), myself.get_cell()).await?;
        server.cast(NodeServerMessage::SubscribeToEvents {
            id: "diem.membership".to_owned(),
            subscription: Box::new(Forward(self.node.clone())),
        })?;
        Ok((server, tls))
    }
}

impl Actor for ClusterServer {
    type Msg = ServerMsg;
    type State = ServerState;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<ServerMsg>, _: ()) -> Result<ServerState, ActorProcessingErr> {
        let mut state = ServerState {
            server: None,
            failures: 0,
        };
        // The first attempt happens here, so that a free port is bound
        // before the tree goes on; a busy one is retried in the background.
        self.handle(myself, ServerMsg::Start, &mut state).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ServerMsg>,
        msg: ServerMsg,
        state: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ServerMsg::Start if state.server.is_none() => match self.start(&myself).await {
                Ok((server, tls)) => {
                    if tls.is_none() {
                        let listen = self.node.config().cluster.listen;
                        tracing::info!(%listen, "cluster listener ready");
                    }
                    self.node.cluster.set_server(Some(server.clone()), tls);
                    state.server = Some(server);
                    state.failures = 0;
                }
                Err(e) => {
                    state.failures = state.failures.saturating_add(1);
                    let config = self.node.config();
                    if state.failures == 1 {
                        tracing::warn!(listen = %config.cluster.listen, error = %e, "cannot start the cluster listener; retrying");
                    }
                    let wait = Backoff::new(Duration::from_millis(100), config.cluster.reconnect_max.get())
                        .delay(state.failures);
                    supervisors::Counted::of(myself.clone()).send_after(wait, || ServerMsg::Start);
                }
            },
            ServerMsg::Start => {}
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<ServerMsg>,
        event: SupervisionEvent,
        state: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, ..) | SupervisionEvent::ActorFailed(cell, _)
                if state.server.as_ref().is_some_and(|s| s.get_id() == cell.get_id()) =>
            {
                Err("the cluster node server stopped".into())
            }
            _ => Ok(()),
        }
    }

    async fn post_stop(
        &self,
        _: ActorRef<ServerMsg>,
        state: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        self.node.cluster.set_server(None, None);
        if let Some(server) = state.server.take() {
            server.stop(Some("cluster stopping".to_owned()));
            let _ = server.get_cell().wait(Some(Duration::from_secs(2))).await;
        }
        Ok(())
    }
}
