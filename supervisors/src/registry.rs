//! The process's table of actor loads: every actor a supervisor started
//! and that runs now, by actor id, with its [`ActorLoad`]; and the names
//! of the message kinds the loads refer to.
//!
//! The table's lock is taken when an actor starts or stops, when a
//! [`Counted`](crate::Counted) handle is made, and when a sampler reads
//! it — never on the message path.
//!
//! ```
//! # use ractor::{Actor, ActorProcessingErr, ActorRef};
//! # use supervisors::*;
//! # #[derive(Debug)]
//! # enum Msg { Ping }
//! # #[cfg(feature = "cluster")]
//! # impl ractor::Message for Msg {}
//! # struct Echo;
//! # impl Actor for Echo {
//! #     type Msg = Msg; type State = (); type Arguments = ();
//! #     async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let spec = SupervisorSpec::new(SupervisorFlags::default())
//!     .child(ChildSpec::worker("echo", |ctx| async move { ctx.spawn(Echo, ()).await }));
//! let root = start_root("reg", spec, EventBus::new()).await.unwrap();
//! let echo = root.supervisor().which_children().await.unwrap()[0].actor.clone().unwrap();
//! let echo = Counted::<Msg>::of(echo.into());
//! echo.send(Msg::Ping).unwrap();
//! let all = loads();
//! let load = all.iter().find(|l| l.path() == "reg/echo").unwrap();
//! # tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//! let s = load.sample();
//! assert_eq!((s.sent, s.handled), (1, 1));
//! assert_eq!(kind_name(s.kind), "Ping");
//! root.shutdown().await;
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use ractor::ActorId;

use crate::load::ActorLoad;

fn table() -> &'static RwLock<HashMap<ActorId, Arc<ActorLoad>>> {
    static TABLE: OnceLock<RwLock<HashMap<ActorId, Arc<ActorLoad>>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// Enters `load` as the load of actor `id` (when it starts).
pub(crate) fn register(id: ActorId, load: Arc<ActorLoad>) {
    if let Ok(mut t) = table().write() {
        t.insert(id, load);
    }
}

/// Removes actor `id`'s load (when it stops).
pub(crate) fn unregister(id: ActorId) {
    if let Ok(mut t) = table().write() {
        t.remove(&id);
    }
}

/// The load of the running actor `id`, if a supervisor started it.
pub fn load_of(id: ActorId) -> Option<Arc<ActorLoad>> {
    table().read().ok()?.get(&id).cloned()
}

/// The loads of every running actor that a supervisor started, in no
/// particular order.
pub fn loads() -> Vec<Arc<ActorLoad>> {
    table()
        .read()
        .map(|t| t.values().cloned().collect())
        .unwrap_or_default()
}

/// Runs `f` on the load of every running actor a supervisor started,
/// under the table's read lock (no copy of the list: for a frequent scan;
/// actors starting or stopping meanwhile wait).
pub fn for_each_load(mut f: impl FnMut(&ActorLoad)) {
    if let Ok(t) = table().read() {
        for load in t.values() {
            f(load);
        }
    }
}

fn kinds() -> &'static Mutex<Vec<&'static str>> {
    static KINDS: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    KINDS.get_or_init(|| Mutex::new(vec![""]))
}

/// The number standing for the message kind `name` (interned once per
/// name: the set of kinds is the set of message variants, finite).
pub(crate) fn kind_id(name: &str) -> u32 {
    let Ok(mut kinds) = kinds().lock() else {
        return 0;
    };
    if let Some(i) = kinds.iter().position(|k| *k == name) {
        return u32::try_from(i).unwrap_or(0);
    }
    kinds.push(Box::leak(name.to_owned().into_boxed_str()));
    u32::try_from(kinds.len() - 1).unwrap_or(0)
}

/// The name of a message kind a [`LoadSample`](crate::LoadSample) gives
/// (`""` for none yet).
pub fn kind_name(kind: u32) -> &'static str {
    kinds()
        .lock()
        .ok()
        .and_then(|k| k.get(kind as usize).copied())
        .unwrap_or("")
}
