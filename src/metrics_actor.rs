//! The metrics actor (`diem/metrics`): every 5 s it samples the gauges and
//! drains recorded latencies into their histogram buckets, so memory stays
//! flat whether or not anything scrapes `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::api::ops::sample_gauges;
use crate::node::Node;

const EVERY: Duration = Duration::from_secs(5);

/// Messages of the metrics actor.
#[derive(Debug)]
pub enum MetricsMsg {
    /// Sample and drain (internal timer).
    Tick,
}

/// The metrics actor.
#[derive(Debug)]
pub struct MetricsActor {
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
                self.node.metrics.upkeep();
                myself.send_after(EVERY, || MetricsMsg::Tick);
            }
        }
        Ok(())
    }
}
