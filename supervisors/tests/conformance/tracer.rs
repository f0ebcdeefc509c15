//! The trace: one ordered list of observations, written synchronously by
//! the workers (start in `pre_start`, stop at the end of `post_stop`) and by
//! an event-bus listener (stops seen by a supervisor, give-ups), exactly as
//! the reference tracer is called by the Erlang processes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use ractor::{ActorCell, ActorId};
use supervisors::Event;

#[derive(Default)]
struct Inner {
    lines: Vec<(bool, String, String)>, // (is_stop, name, text)
    incs: HashMap<String, u64>,
    alive: HashMap<String, ActorCell>,
    procs: HashMap<ActorId, (String, u64)>,
    reported: HashSet<ActorId>,
}

#[derive(Clone, Default)]
pub struct Tracer {
    inner: Arc<Mutex<Inner>>,
}

impl Tracer {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn line(&self, text: String) {
        self.lock().lines.push((false, String::new(), text));
    }

    /// `start NAME INC`; returns the incarnation.
    pub fn started(&self, name: &str) -> u64 {
        let mut t = self.lock();
        let inc = t.incs.get(name).copied().unwrap_or(0) + 1;
        t.incs.insert(name.to_owned(), inc);
        t.lines
            .push((false, name.to_owned(), format!("start {name} {inc}")));
        inc
    }

    /// Records which process is incarnation `inc` of `name`.
    pub fn register(&self, name: &str, inc: u64, cell: &ActorCell) {
        let mut t = self.lock();
        t.procs.insert(cell.get_id(), (name.to_owned(), inc));
        t.alive.insert(name.to_owned(), cell.clone());
    }

    /// `stop NAME INC REASON` for process `id`, once.
    pub fn stopped(&self, id: ActorId, reason: &str) {
        let mut t = self.lock();
        if !t.reported.insert(id) {
            return;
        }
        let Some((name, inc)) = t.procs.get(&id).cloned() else {
            return;
        };
        if t.alive.get(&name).is_some_and(|c| c.get_id() == id) {
            t.alive.remove(&name);
        }
        t.lines
            .push((true, name.clone(), format!("stop {name} {inc} {reason}")));
    }

    pub fn on_event(&self, event: &Event) {
        match event {
            Event::Exited { actor, reason, .. } => {
                let id = self
                    .lock()
                    .procs
                    .keys()
                    .find(|id| id.to_string() == *actor)
                    .copied();
                if let Some(id) = id {
                    self.stopped(id, &reason.to_string());
                }
            }
            Event::GaveUp { path } => {
                let name = path.rsplit('/').next().unwrap_or(path);
                self.line(format!("giveup {name}"));
            }
            _ => {}
        }
    }

    pub fn whereis(&self, name: &str) -> Option<ActorCell> {
        self.lock().alive.get(name).cloned()
    }

    pub fn name_of(&self, id: ActorId) -> Option<String> {
        self.lock().procs.get(&id).map(|(n, _)| n.clone())
    }

    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    /// The lines, with runs of stops of one dynamic supervisor's instances
    /// sorted (README §2, canonicalisation).
    pub fn canonical(&self, parent_of: &HashMap<String, String>, dynamic: &HashSet<String>) -> Vec<String> {
        let lines = self.lock().lines.clone();
        let key = |(is_stop, name, _): &(bool, String, String)| {
            if !*is_stop {
                return None;
            }
            parent_of.get(name).filter(|p| dynamic.contains(*p)).cloned()
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            match key(&lines[i]) {
                None => {
                    out.push(lines[i].2.clone());
                    i += 1;
                }
                Some(k) => {
                    let mut run = Vec::new();
                    while i < lines.len() && key(&lines[i]).as_ref() == Some(&k) {
                        run.push(lines[i].2.clone());
                        i += 1;
                    }
                    run.sort();
                    out.extend(run);
                }
            }
        }
        out
    }
}
