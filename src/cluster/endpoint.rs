//! The cluster endpoint actor (`diem/cluster/endpoint`): this node as the
//! other members reach it — heartbeats, and control commands run here on
//! another member's behalf (`diem ctl --node NAME`, `--cluster`), and the
//! addresses of the members it sees up (how members learn each other with
//! TLS).
//!
//! It is registered as `diem.endpoint.<member>` and joins the process group
//! `diem`/`endpoints`, which ractor_cluster synchronises across sessions. A
//! control command runs in a task of its own, so a long one (a rolling
//! restart) never delays a heartbeat. Only authenticated members (the
//! cookie) reach it; every command is audited with the member it came from.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::cluster::endpoint_msg::{EndpointMsg, GROUP, SCOPE};
use crate::cluster::shared::MemberState;
use crate::control::caller::Caller;
use crate::control::execute::execute;
use crate::node::Node;

/// The endpoint actor.
#[derive(Debug)]
pub(crate) struct ClusterEndpoint {
    /// The node it serves.
    pub(crate) node: Arc<Node>,
}

impl Actor for ClusterEndpoint {
    type Msg = EndpointMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<EndpointMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.to_owned(), GROUP.to_owned(), vec![myself.get_cell()]);
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<EndpointMsg>,
        msg: EndpointMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EndpointMsg::Ping(sent, reply) => {
                let _ = reply.send(sent);
            }
            EndpointMsg::Members(reply) => {
                let mut addrs = vec![self.node.config().cluster.advertised()];
                addrs.extend(
                    self.node
                        .cluster
                        .members()
                        .iter()
                        .filter(|m| m.state == MemberState::Up)
                        .map(|m| m.addr.clone()),
                );
                let _ = reply.send(addrs.join("\n"));
            }
            EndpointMsg::Control(line, origin, reply) => {
                let node = self.node.clone();
                tokio::spawn(async move {
                    let caller = Caller::remote(origin);
                    let _ = reply.send(execute(&node, &line, &caller).await);
                });
            }
        }
        Ok(())
    }
}
