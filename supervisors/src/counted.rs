//! A handle to an actor that counts what it sends: the sending half of the
//! mailbox figure of [`ActorLoad`]. Make one per actor
//! and keep it (making it looks the load up in a table, under a lock);
//! sending through it costs one atomic add beside ractor's send.
//!
//! ```
//! # use ractor::{Actor, ActorProcessingErr, ActorRef};
//! # use supervisors::*;
//! # #[derive(Debug)]
//! # enum Msg { Tick }
//! # #[cfg(feature = "cluster")]
//! # impl ractor::Message for Msg {}
//! # struct Ticker;
//! # impl Actor for Ticker {
//! #     type Msg = Msg; type State = (); type Arguments = ();
//! #     async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let spec = SupervisorSpec::new(SupervisorFlags::default())
//!     .child(ChildSpec::worker("ticker", |ctx| async move { ctx.spawn(Ticker, ()).await }));
//! let root = start_root("counted", spec, EventBus::new()).await.unwrap();
//! let cell = root.supervisor().which_children().await.unwrap()[0].actor.clone().unwrap();
//! let ticker = Counted::<Msg>::of(cell.into());
//! assert!(ticker.is_counted());
//! ticker.send(Msg::Tick).unwrap();
//! ticker.send_after(std::time::Duration::from_millis(1), || Msg::Tick);
//! # tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//! assert_eq!(ticker.load().unwrap().sample().sent, 2);
//! root.shutdown().await;
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, MessagingErr, RpcReplyPort};

use crate::load::ActorLoad;
use crate::registry::load_of;

/// An [`ActorRef`] that counts the messages sent through it in the
/// actor's [`ActorLoad`] (when a supervisor started the actor; otherwise
/// it sends as the `ActorRef` does).
#[derive(Debug)]
pub struct Counted<M: Message> {
    actor: ActorRef<M>,
    load: Option<Arc<ActorLoad>>,
}

impl<M: Message> Clone for Counted<M> {
    fn clone(&self) -> Self {
        Self {
            actor: self.actor.clone(),
            load: self.load.clone(),
        }
    }
}

impl<M: Message> Counted<M> {
    /// The counting handle of `actor`.
    pub fn of(actor: ActorRef<M>) -> Self {
        let load = load_of(actor.get_id());
        Self { actor, load }
    }

    /// Sends `msg`, counted.
    #[inline]
    pub fn send(&self, msg: M) -> Result<(), MessagingErr<M>> {
        let Some(load) = &self.load else {
            return self.actor.send_message(msg);
        };
        load.sent();
        let sent = self.actor.send_message(msg);
        if sent.is_err() {
            load.unsent();
        }
        sent
    }

    /// Sends what `msg` makes after `delay`, counted when it is sent.
    pub fn send_after<F>(
        &self,
        delay: Duration,
        msg: F,
    ) -> tokio::task::JoinHandle<Result<(), MessagingErr<M>>>
    where
        F: FnOnce() -> M + Send + 'static,
    {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            me.send(msg())
        })
    }

    /// Sends the message `build` makes with a reply port, counted, and
    /// waits for the reply (at most `timeout`), as ractor's `call`.
    pub async fn call<R, F>(
        &self,
        build: F,
        timeout: Option<Duration>,
    ) -> Result<CallResult<R>, MessagingErr<M>>
    where
        F: FnOnce(RpcReplyPort<R>) -> M,
        R: Send + 'static,
    {
        if let Some(load) = &self.load {
            load.sent();
        }
        let called = self.actor.call(build, timeout).await;
        if let (Some(load), Err(_)) = (&self.load, &called) {
            load.unsent();
        }
        called
    }

    /// The actor.
    pub fn actor(&self) -> &ActorRef<M> {
        &self.actor
    }

    /// The actor's load, if a supervisor started it.
    pub fn load(&self) -> Option<&Arc<ActorLoad>> {
        self.load.as_ref()
    }

    /// Whether sends are counted (a supervisor started the actor).
    pub fn is_counted(&self) -> bool {
        self.load.is_some()
    }
}
