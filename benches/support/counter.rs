//! The actor the cast rows send to (`benches/actors.rs`,
//! `examples/cast.rs`): it counts `Count`s and answers `Sync` with the
//! count, so a batch of casts ends with one call that proves them handled.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

/// The counter's messages.
#[derive(Debug, ractor_cluster::RactorMessage)]
pub(crate) enum Msg {
    /// One more.
    Count,
    /// The count so far.
    Sync(RpcReplyPort<u64>),
}

/// Counts what it is sent.
pub(crate) struct Counter;

impl Actor for Counter {
    type Msg = Msg;
    type State = u64;
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }
    async fn handle(&self, _: ActorRef<Msg>, msg: Msg, n: &mut u64) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Count => *n += 1,
            Msg::Sync(reply) => {
                let _ = reply.send(*n);
            }
        }
        Ok(())
    }
}

/// A counter started by a supervisor of its own (its messages timed and
/// counted in its load), and its counting handle — as every diem actor is
/// started and sent to. Shut the root down when done.
pub(crate) async fn supervised(name: &str) -> (supervisors::Root, supervisors::Counted<Msg>) {
    use supervisors::{start_root, ChildSpec, Counted, EventBus, Strategy, SupervisorFlags, SupervisorSpec};
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne))
        .child(ChildSpec::worker("counter", |ctx| async move {
            ctx.spawn(Counter, ()).await
        }));
    let root = start_root(name, spec, EventBus::new())
        .await
        .expect("the counter's tree starts");
    let cell = root
        .supervisor()
        .which_children()
        .await
        .expect("the tree answers")[0]
        .actor
        .clone()
        .expect("the counter runs");
    let actor = Counted::<Msg>::of(cell.into());
    assert!(actor.is_counted());
    (root, actor)
}

/// The count of a counter sent to through its counting handle: a call.
pub(crate) async fn count(actor: &supervisors::Counted<Msg>) -> u64 {
    match actor.call(Msg::Sync, None).await.expect("the counter answers") {
        ractor::rpc::CallResult::Success(n) => n,
        other => panic!("{other:?}"),
    }
}
