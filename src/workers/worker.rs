//! The request worker actor (`diem/workers/N`).
//!
//! A worker takes [`Job`](super::job::Job)s from its mailbox one at a time and runs the API
//! handler on each. It holds no state a request could corrupt beyond its own
//! random-number generator, so a panic in a handler is an ordinary crash:
//! ractor catches it, the job's drop answers that one request with 500,
//! the jobs still queued in the mailbox go back to the pool for another
//! worker, and the workers' supervisor starts a replacement. A worker
//! registers with the [`WorkerPool`](super::pool::WorkerPool) when it starts
//! and is removed from it when its state is dropped, whatever the exit.
//! The tree counts the jobs it holds (its load: sent through the pool's
//! counting handle, handled when its handler returns), by which the pool
//! sends new jobs to idle workers first.

use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};

use crate::api;
use crate::node::Node;
use supervisors::Counted;

use crate::workers::job::WorkerMsg;

/// A request worker.
#[derive(Debug)]
pub struct Worker {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// Removes the worker from the registry when its state is dropped.
#[derive(Debug)]
struct Registration {
    node: Arc<Node>,
    id: ActorId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.node.workers.unregister(self.id);
    }
}

/// A worker's state.
#[derive(Debug)]
pub struct WorkerState {
    rng: fastrand::Rng,
    _registration: Registration,
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<WorkerMsg>, _: ()) -> Result<WorkerState, ActorProcessingErr> {
        Ok(WorkerState {
            rng: fastrand::Rng::new(),
            _registration: Registration {
                node: self.node.clone(),
                id: myself.get_id(),
            },
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        _: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        // Registered only once running: messages sent before would wait
        // behind the start for nothing. The counting handle's load (the
        // tree counts every actor's messages) is the pool's measure of
        // the jobs the worker holds.
        self.node.workers.register(Counted::of(myself));
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Job(mut job) => {
                if let Some(request) = job.start() {
                    let response = api::handle(&self.node, request, &mut state.rng).await;
                    job.finish(response);
                }
            }
            WorkerMsg::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
