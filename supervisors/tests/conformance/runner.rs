//! Runs a scenario on `supervisors` and returns its trace (README §1.2).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervisors::{
    start_root, ChildKind, ChildSpec, ChildState, EventBus, ExitReason, Root, StartCtx, Strategy, Supervisor,
    SupervisorArgs, SupervisorFlags, SupervisorRef, SupervisorSpec,
};

use super::scenario::{parse_child, ChildDecl, Decl, Scenario, SupDecl};
use super::tracer::Tracer;

/// The scenario worker: a gen_server that traces its start and its stop.
struct TraceWorker;

struct WorkerArgs {
    name: String,
    decl: ChildDecl,
    tracer: Tracer,
}

struct WorkerState {
    args: WorkerArgs,
    /// Set when the worker stops itself (`{stop, Reason, S}`).
    own_exit: Option<String>,
}

impl Actor for TraceWorker {
    type Msg = String;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<String>,
        args: WorkerArgs,
    ) -> Result<WorkerState, ActorProcessingErr> {
        let inc = args.tracer.started(&args.name);
        args.tracer.register(&args.name, inc, &myself.get_cell());
        Ok(WorkerState { args, own_exit: None })
    }

    async fn handle(
        &self,
        myself: ActorRef<String>,
        reason: String,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop(Some(reason.clone()));
        state.own_exit = Some(reason);
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<String>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        // terminate/2 runs when the worker stops itself, or when it traps
        // exits and its supervisor shuts it down; a worker that does not
        // trap exits dies at once on the shutdown signal.
        let runs_terminate = state.own_exit.is_some() || state.args.decl.trap;
        if runs_terminate && !state.args.decl.delay.is_zero() {
            tokio::time::sleep(state.args.decl.delay).await;
        }
        let reason = state.own_exit.clone().unwrap_or_else(|| "shutdown".into());
        let reason = ExitReason::from_stop_reason(Some(&reason)).to_string();
        state.args.tracer.stopped(myself.get_id(), &reason);
        Ok(())
    }
}

fn worker_spec(decl: &ChildDecl, tracer: &Tracer, dynamic: bool) -> ChildSpec {
    let (d, t) = (decl.clone(), tracer.clone());
    ChildSpec::worker(decl.name.clone(), move |ctx: StartCtx| {
        let name = if dynamic {
            ctx.args::<String>().cloned().unwrap_or_default()
        } else {
            d.name.clone()
        };
        let args = WorkerArgs {
            name,
            decl: d.clone(),
            tracer: t.clone(),
        };
        async move { ctx.spawn(TraceWorker, args).await }
    })
    .restart(decl.restart)
    .shutdown(decl.shutdown)
    .significant(decl.significant)
}

fn flags(s: &SupDecl) -> SupervisorFlags {
    SupervisorFlags::new(s.strategy)
        .intensity(s.intensity)
        .period(s.period)
        .auto_shutdown(s.auto_shutdown)
}

fn sup_spec(name: &str, scn: &Scenario, tracer: &Tracer) -> SupervisorSpec {
    let decl = scn.sup(name).cloned();
    let strategy = decl.as_ref().map_or(Strategy::OneForOne, |d| d.strategy);
    let mut spec = SupervisorSpec::new(decl.as_ref().map(flags).unwrap_or_default());
    for d in &scn.decls {
        match d {
            Decl::Sup(s) if s.parent.as_deref() == Some(name) => {
                spec = spec.child(sup_child_spec(s, scn, tracer))
            }
            Decl::Child(c) if c.parent == name => {
                spec = spec.child(worker_spec(c, tracer, strategy == Strategy::Dynamic))
            }
            _ => {}
        }
    }
    spec
}

fn sup_child_spec(s: &SupDecl, scn: &Scenario, tracer: &Tracer) -> ChildSpec {
    let (name, scn, tracer) = (s.name.clone(), scn.clone(), tracer.clone());
    ChildSpec::worker(s.name.clone(), move |ctx: StartCtx| {
        let (name, scn, tracer) = (name.clone(), scn.clone(), tracer.clone());
        async move {
            let inc = tracer.started(&name);
            let args = SupervisorArgs {
                spec: sup_spec(&name, &scn, &tracer),
                path: ctx.path.clone(),
                events: ctx.events.clone(),
            };
            let (sup, _) = Supervisor::spawn_with(args, Some(ctx.supervisor.clone())).await?;
            let cell = sup.actor().get_cell();
            tracer.register(&name, inc, &cell);
            Ok(cell)
        }
    })
    .kind(ChildKind::Supervisor)
    .restart(s.restart)
    .shutdown(s.shutdown)
    .significant(s.significant)
}

struct Run {
    scn: Scenario,
    tracer: Tracer,
    root: Root,
    parent_of: HashMap<String, String>,
    /// name -> instance id, for dynamic instances.
    instances: HashMap<String, String>,
}

impl Run {
    fn sup_ref(&self, name: &str) -> Option<SupervisorRef> {
        self.tracer.whereis(name).and_then(SupervisorRef::from_cell)
    }

    fn result(&self, r: Result<(), supervisors::SupervisorError>) {
        self.tracer.line(match r {
            Ok(()) => "result ok".into(),
            Err(e) => format!("result error {}", e.otp_name()),
        });
    }

    fn root_alive(&self) -> bool {
        self.root.supervisor().actor().get_status() != ractor::ActorStatus::Stopped
    }

    async fn settle(&self) {
        let (mut prev, mut stable) = (usize::MAX, 0);
        loop {
            let sups: Vec<SupervisorRef> = self
                .scn
                .decls
                .iter()
                .filter_map(|d| match d {
                    Decl::Sup(s) => self.sup_ref(&s.name),
                    _ => None,
                })
                .collect();
            for s in sups {
                let _ = s.count_children().await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            let n = self.tracer.len();
            if n == prev && stable >= 2 {
                return;
            }
            if n == prev {
                stable += 1;
            } else {
                (prev, stable) = (n, 0);
            }
        }
    }

    async fn event(&mut self, ev: &[String]) -> Result<(), String> {
        let arg = |i: usize| {
            ev.get(i)
                .cloned()
                .ok_or_else(|| format!("event too short: {ev:?}"))
        };
        match ev[0].as_str() {
            "sleep" => {
                let ms: u64 = arg(1)?.parse().map_err(|_| format!("bad sleep: {ev:?}"))?;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            "crash" | "kill" => {
                let name = arg(1)?;
                let Some(cell) = self.tracer.whereis(&name) else {
                    self.tracer.line(format!("noproc {name}"));
                    return Ok(());
                };
                let reason = ev.get(2).cloned().unwrap_or_else(|| "crash".into());
                if ev[0] == "kill" {
                    cell.kill();
                } else if self.scn.is_sup(&name) {
                    cell.stop(Some(reason));
                } else {
                    cell.send_message(reason).map_err(|e| e.to_string())?;
                }
                let _ = cell.wait(None).await;
            }
            "shutdown" => {
                self.root.shutdown().await;
            }
            "start_child" => {
                let (sup, name) = (arg(1)?, arg(2)?);
                let Some(sref) = self.sup_ref(&sup) else {
                    self.tracer.line(format!("noproc {sup}"));
                    return Ok(());
                };
                self.parent_of.insert(name.clone(), sup.clone());
                let dynamic = self
                    .scn
                    .sup(&sup)
                    .is_some_and(|s| s.strategy == Strategy::Dynamic);
                let r = if dynamic {
                    sref.start_instance(Arc::new(name.clone())).await.map(|c| {
                        self.instances.insert(name, c.id);
                    })
                } else {
                    let decl = parse_child(&ev[2..], &sup)?;
                    sref.start_child(worker_spec(&decl, &self.tracer, false))
                        .await
                        .map(|_| ())
                };
                self.result(r);
            }
            "terminate_child" | "restart_child" | "delete_child" => {
                let (sup, name) = (arg(1)?, arg(2)?);
                let Some(sref) = self.sup_ref(&sup) else {
                    self.tracer.line(format!("noproc {sup}"));
                    return Ok(());
                };
                let id = self.instances.get(&name).cloned().unwrap_or(name);
                let r = match ev[0].as_str() {
                    "terminate_child" => sref.terminate_child(&id).await,
                    "restart_child" => sref.restart_child(&id).await.map(|_| ()),
                    _ => sref.delete_child(&id).await,
                };
                self.result(r);
            }
            "which" => {
                let sup = arg(1)?;
                let Some(sref) = self.sup_ref(&sup) else {
                    self.tracer.line(format!("noproc {sup}"));
                    return Ok(());
                };
                let children = sref.which_children().await.map_err(|e| e.to_string())?;
                let state = |s: ChildState| match s {
                    ChildState::Running => "running",
                    ChildState::Stopped => "stopped",
                    ChildState::Restarting => "restarting",
                };
                let mut items: Vec<String> = if self
                    .scn
                    .sup(&sup)
                    .is_some_and(|s| s.strategy == Strategy::Dynamic)
                {
                    let mut v: Vec<String> = children
                        .iter()
                        .filter_map(|c| c.actor.as_ref())
                        .filter_map(|a| self.tracer.name_of(a.get_id()))
                        .map(|n| format!("{n}=running"))
                        .collect();
                    v.sort();
                    v
                } else {
                    children
                        .iter()
                        .map(|c| format!("{}={}", c.id, state(c.state)))
                        .collect()
                };
                items.insert(0, format!("children {sup}"));
                self.tracer.line(items.join(" "));
            }
            other => return Err(format!("unknown event `{other}`")),
        }
        Ok(())
    }
}

/// Runs the scenario text; returns the canonical trace lines.
pub async fn run(text: &str) -> Result<Vec<String>, String> {
    let scn = super::scenario::parse(text)?;
    let tracer = Tracer::default();
    let events = EventBus::new();
    let t = tracer.clone();
    events.add_listener(move |e| t.on_event(e));

    let inc = tracer.started(&scn.root);
    let root = start_root(&scn.root, sup_spec(&scn.root, &scn, &tracer), events)
        .await
        .map_err(|e| format!("root failed to start: {e}"))?;
    tracer.register(&scn.root, inc, &root.supervisor().actor().get_cell());

    let mut parent_of = HashMap::new();
    for d in &scn.decls {
        match d {
            Decl::Sup(s) => {
                if let Some(p) = &s.parent {
                    parent_of.insert(s.name.clone(), p.clone());
                }
            }
            Decl::Child(c) => {
                parent_of.insert(c.name.clone(), c.parent.clone());
            }
        }
    }
    let mut run = Run {
        scn: scn.clone(),
        tracer: tracer.clone(),
        root,
        parent_of,
        instances: HashMap::new(),
    };
    run.settle().await;
    for ev in &scn.events {
        if !run.root_alive() {
            break;
        }
        tracer.line(format!("event {}", ev.join(" ")));
        run.event(ev).await?;
        run.settle().await;
    }
    if run.root_alive() {
        tracer.line("event shutdown".into());
        run.root.shutdown().await;
    }
    let reason = run.root.wait().await;
    let root_id = run.root.supervisor().actor().get_id();
    tracer.stopped(root_id, &reason.to_string());
    run.settle().await;

    let dynamic: HashSet<String> = scn
        .decls
        .iter()
        .filter_map(|d| match d {
            Decl::Sup(s) if s.strategy == Strategy::Dynamic => Some(s.name.clone()),
            _ => None,
        })
        .collect();
    Ok(tracer.canonical(&run.parent_of, &dynamic))
}
