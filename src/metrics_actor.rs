//! The metrics actor (`diem/metrics`): every second it samples the gauges,
//! so that what `/metrics`, `ctl stats` and the observer show is at most a
//! second old even when nobody renders them.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;

use crate::api::ops::sample_gauges;
use crate::node::Node;

const EVERY: Duration = Duration::from_secs(1);

/// Messages of the metrics actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum MetricsMsg {
    /// Sample (internal timer).
    Tick,
}

/// The metrics actor.
#[derive(Debug)]
pub(crate) struct MetricsActor {
    /// The node it serves.
    pub node: Arc<Node>,
}

impl Actor for MetricsActor {
    type Msg = MetricsMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<MetricsMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        myself.send_after(EVERY, || MetricsMsg::Tick);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<MetricsMsg>,
        msg: MetricsMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MetricsMsg::Tick => {
                sample_gauges(&self.node);
                myself.send_after(EVERY, || MetricsMsg::Tick);
            }
        }
        Ok(())
    }
}
