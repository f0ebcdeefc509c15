//! The wrapper [`StartCtx::spawn`](crate::StartCtx::spawn) puts around
//! every child actor: the same actor, its messages timed and counted in
//! its [`ActorLoad`], entered in the load table while it runs.
//!
//! A message's kind is its variant's name (the first word of its `Debug`
//! text), computed once per kind and incarnation: the wrapper keeps the
//! kinds it has seen by [`std::mem::discriminant`], so a message costs a
//! comparison or two, not a formatting.

use std::fmt::{self, Debug, Write};
use std::future::Future;
use std::mem::Discriminant;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::load::{ActorLoad, Running};
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
    #[inline]
    fn kind(&mut self, msg: &A::Msg) -> u32
    where
        A::Msg: Debug,
    {
        let d = std::mem::discriminant(msg);
        match self.kinds.iter().find(|(k, _)| *k == d) {
            Some((_, id)) => *id,
            None => self.new_kind(d, msg),
        }
    }

    /// A kind seen for the first time: named (a formatting), out of line.
    #[cold]
    #[inline(never)]
    fn new_kind(&mut self, d: Discriminant<A::Msg>, msg: &A::Msg) -> u32
    where
        A::Msg: Debug,
    {
        let id = kind_id(&variant_name(msg));
        self.kinds.push((d, id));
        id
    }
}

pin_project_lite::pin_project! {
    /// A handler running: the actor's handler future, with the guard that
    /// ends the handler in the load when the future completes or is
    /// dropped (a panic caught, a kill).
    struct Handling<'a, F> {
        #[pin]
        handler: F,
        _running: Running<'a>,
    }
}

impl<F: Future> Future for Handling<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().handler.poll(cx)
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

    // The callbacks below are not `async fn`s: each returns the actor's
    // own future (the handler's inside a small wrapper) instead of a
    // future of its own holding it, which would be moved whole once more.
    // For `handle` that was measured: 3 % fewer instructions per message
    // on the cast row (benches/cast_instructions.sh), and the request
    // path's copies of the worker's large future went from +101 to +9
    // instructions per request (benches/instructions.sh).

    fn post_start(
        &self,
        myself: ActorRef<A::Msg>,
        state: &mut State<A>,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        self.actor.post_start(myself, &mut state.inner)
    }

    fn post_stop(
        &self,
        myself: ActorRef<A::Msg>,
        state: &mut State<A>,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        self.actor.post_stop(myself, &mut state.inner)
    }

    #[inline]
    fn handle(
        &self,
        myself: ActorRef<A::Msg>,
        msg: A::Msg,
        state: &mut State<A>,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        let kind = state.kind(&msg);
        let running = self.load.begin(kind);
        Handling {
            handler: self.actor.handle(myself, msg, &mut state.inner),
            _running: running,
        }
    }

    #[cfg(feature = "cluster")]
    fn handle_serialized(
        &self,
        myself: ActorRef<A::Msg>,
        msg: ractor::message::SerializedMessage,
        state: &mut State<A>,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        self.actor.handle_serialized(myself, msg, &mut state.inner)
    }

    fn handle_supervisor_evt(
        &self,
        myself: ActorRef<A::Msg>,
        event: SupervisionEvent,
        state: &mut State<A>,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        self.actor.handle_supervisor_evt(myself, event, &mut state.inner)
    }
}
