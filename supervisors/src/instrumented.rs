//! The wrapper [`StartCtx::spawn`](crate::StartCtx::spawn) puts around
//! every child actor: the same actor, its messages timed and counted in
//! its [`ActorLoad`], entered in the load table while it runs.
//!
//! A message's kind is its variant's name (the first word of its `Debug`
//! text), computed once per kind and incarnation: the wrapper keeps the
//! kinds it has seen by [`std::mem::discriminant`], so a message costs a
//! comparison or two, not a formatting.

use std::fmt::{self, Debug, Write};
use std::mem::Discriminant;
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::load::ActorLoad;
use crate::registry::{kind_id, register, unregister};

/// `actor`, counted in `load`.
pub(crate) struct Instrumented<A> {
    pub(crate) actor: A,
    pub(crate) load: Arc<ActorLoad>,
}

/// The wrapper's state: the actor's, the kinds seen, and the entry in
/// the load table (removed when the state is dropped: however the actor
/// ends).
pub(crate) struct State<A: Actor> {
    inner: A::State,
    kinds: Vec<(Discriminant<A::Msg>, u32)>,
    _entry: Entry,
}

struct Entry(ActorId);

impl Drop for Entry {
    fn drop(&mut self) {
        unregister(self.0);
    }
}

impl<A: Actor> State<A> {
    fn kind(&mut self, msg: &A::Msg) -> u32
    where
        A::Msg: Debug,
    {
        let d = std::mem::discriminant(msg);
        if let Some((_, id)) = self.kinds.iter().find(|(k, _)| *k == d) {
            return *id;
        }
        let id = kind_id(&variant_name(msg));
        self.kinds.push((d, id));
        id
    }
}

/// The first word of `msg`'s `Debug` text: an enum's variant, a struct's
/// name (the formatting is cut off there).
fn variant_name(msg: &impl Debug) -> String {
    struct FirstWord(String);
    impl Write for FirstWord {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for c in s.chars() {
                if !(c.is_alphanumeric() || c == '_' || c == ':') || self.0.len() >= 48 {
                    return Err(fmt::Error);
                }
                self.0.push(c);
            }
            Ok(())
        }
    }
    let mut w = FirstWord(String::new());
    let _ = write!(w, "{msg:?}");
    w.0
}

impl<A> Actor for Instrumented<A>
where
    A: Actor,
    A::Msg: Debug,
{
    type Msg = A::Msg;
    type State = State<A>;
    type Arguments = A::Arguments;

    async fn pre_start(
        &self,
        myself: ActorRef<A::Msg>,
        args: A::Arguments,
    ) -> Result<State<A>, ActorProcessingErr> {
        // Entered first: a failed start drops the entry with the state.
        let entry = Entry(myself.get_id());
        register(myself.get_id(), self.load.clone());
        let inner = self.actor.pre_start(myself, args).await?;
        Ok(State {
            inner,
            kinds: Vec::new(),
            _entry: entry,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<A::Msg>,
        state: &mut State<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.actor.post_start(myself, &mut state.inner).await
    }

    async fn post_stop(
        &self,
        myself: ActorRef<A::Msg>,
        state: &mut State<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.actor.post_stop(myself, &mut state.inner).await
    }

    async fn handle(
        &self,
        myself: ActorRef<A::Msg>,
        msg: A::Msg,
        state: &mut State<A>,
    ) -> Result<(), ActorProcessingErr> {
        let kind = state.kind(&msg);
        let _running = self.load.begin(kind);
        self.actor.handle(myself, msg, &mut state.inner).await
    }

    #[cfg(feature = "cluster")]
    async fn handle_serialized(
        &self,
        myself: ActorRef<A::Msg>,
        msg: ractor::message::SerializedMessage,
        state: &mut State<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.actor.handle_serialized(myself, msg, &mut state.inner).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<A::Msg>,
        event: SupervisionEvent,
        state: &mut State<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.actor
            .handle_supervisor_evt(myself, event, &mut state.inner)
            .await
    }
}
