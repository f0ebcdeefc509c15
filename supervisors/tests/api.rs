//! The supervisor API beyond the conformance traces: panics as crashes,
//! start failures, errors, backoff, snapshots and events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on setup failure

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervisors::*;

/// A worker that panics on `Panic` and answers `Ping`.
struct Probe;

#[derive(Debug)]
enum ProbeMsg {
    Panic(&'static str),
    Ping(ractor::RpcReplyPort<()>),
}

#[cfg(feature = "cluster")]
impl ractor::Message for ProbeMsg {}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<ProbeMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Panic(text) => panic!("{text}"),
            ProbeMsg::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

/// A worker whose start fails with an error.
struct Refuses;
impl Actor for Refuses {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Err("no database".into())
    }
}

fn probe(id: &str) -> ChildSpec {
    ChildSpec::worker(id, |ctx| async move { ctx.spawn(Probe, ()).await })
}

async fn cell_of(sup: &SupervisorRef, id: &str) -> ractor::ActorCell {
    let children = sup.which_children().await.expect("which_children");
    let child = children.into_iter().find(|c| c.id == id).expect("child exists");
    child.actor.expect("child running")
}

#[tokio::test]
async fn a_panic_is_a_crash_carrying_its_message_and_siblings_live_on() {
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(5))
        .child(probe("a"))
        .child(probe("b"));
    let root = start_root("t", spec, EventBus::new()).await.expect("start");
    let sup = root.supervisor().clone();
    let a1 = cell_of(&sup, "a").await;
    let b1 = cell_of(&sup, "b").await;
    a1.send_message(ProbeMsg::Panic("handler exploded"))
        .expect("send");
    a1.wait(None).await.expect("wait");
    let a2 = cell_of(&sup, "a").await;
    assert_ne!(a1.get_id(), a2.get_id());
    assert_eq!(
        cell_of(&sup, "b").await.get_id(),
        b1.get_id(),
        "sibling untouched"
    );
    let info = sup.which_children().await.expect("which");
    let a = info.iter().find(|c| c.id == "a").expect("a");
    assert_eq!(a.restarts, 1);
    let reason = a.last_exit.clone().expect("last exit");
    assert!(!reason.is_normal());
    assert!(reason.to_string().contains("handler exploded"), "{reason}");
    let a2: ActorRef<ProbeMsg> = a2.into();
    ractor::call!(a2, ProbeMsg::Ping).expect("replacement answers");
    assert_eq!(root.shutdown().await, ExitReason::Shutdown);
}

#[tokio::test]
async fn a_failing_start_stops_started_children_and_names_the_child() {
    let events = EventBus::new();
    let mut rx = events.subscribe();
    let spec = SupervisorSpec::new(SupervisorFlags::default())
        .child(probe("first"))
        .child(ChildSpec::worker("db", |ctx| async move {
            ctx.spawn(Refuses, ()).await
        }))
        .child(probe("never"));
    let err = start_root("t", spec, events).await.expect_err("must fail");
    match &err {
        SupervisorError::StartFailed { id, reason } => {
            assert_eq!(id, "db");
            assert!(reason.contains("no database"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    assert!(matches!(&seen[0], Event::Started { path, .. } if path == "t/first"));
    assert!(
        matches!(&seen[1], Event::Exited { path, reason: ExitReason::Shutdown, .. } if path == "t/first")
    );
    assert_eq!(seen.len(), 2, "`never` was not started: {seen:?}");
}

#[tokio::test]
async fn a_child_that_always_fails_to_restart_makes_the_supervisor_give_up() {
    let starts = Arc::new(AtomicU32::new(0));
    let s = starts.clone();
    let flaky = ChildSpec::worker("flaky", move |ctx| {
        let n = s.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                ctx.spawn(Probe, ()).await
            } else {
                ctx.spawn(Refuses, ()).await
            }
        }
    });
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(3)).child(flaky);
    let events = EventBus::new();
    let mut rx = events.subscribe();
    let root = start_root("t", spec, events).await.expect("start");
    let cell = cell_of(root.supervisor(), "flaky").await;
    cell.send_message(ProbeMsg::Panic("first crash")).expect("send");
    let reason = tokio::time::timeout(Duration::from_secs(5), root.wait())
        .await
        .expect("gives up");
    assert_eq!(reason, ExitReason::Shutdown);
    assert!(
        !root.stop_was_requested(),
        "a root that gives up was not asked to stop"
    );
    // 1 crash + 3 failed restarts allowed, the 4th attempt exceeds intensity 3
    assert_eq!(starts.load(Ordering::SeqCst), 4);
    let mut gave_up = false;
    while let Ok(e) = rx.try_recv() {
        gave_up |= matches!(e, Event::GaveUp { ref path } if path == "t");
    }
    assert!(gave_up);
}

#[tokio::test]
async fn api_errors_follow_otp() {
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne)).child(probe("a"));
    let root = start_root("t", spec, EventBus::new()).await.expect("start");
    let sup = root.supervisor();
    assert!(matches!(
        sup.start_child(probe("a")).await,
        Err(SupervisorError::AlreadyStarted(_))
    ));
    assert!(matches!(
        sup.restart_child("a").await,
        Err(SupervisorError::Running(_))
    ));
    assert!(matches!(
        sup.delete_child("a").await,
        Err(SupervisorError::Running(_))
    ));
    assert!(matches!(
        sup.terminate_child("zz").await,
        Err(SupervisorError::NotFound(_))
    ));
    sup.terminate_child("a").await.expect("terminate");
    assert!(matches!(
        sup.start_child(probe("a")).await,
        Err(SupervisorError::AlreadyPresent(_))
    ));
    assert!(matches!(
        sup.start_instance(Arc::new(1u8)).await,
        Err(SupervisorError::BadStartArgument(..))
    ));
    let count = sup.count_children().await.expect("count");
    assert_eq!((count.specs, count.active, count.workers), (1, 0, 1));
    sup.delete_child("a").await.expect("delete");
    let bad = probe("s").significant(true);
    assert!(matches!(
        sup.start_child(bad).await,
        Err(SupervisorError::BadSpec { .. })
    ));
    root.shutdown().await;
}

#[tokio::test]
async fn dynamic_supervisor_rejects_static_calls() {
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::Dynamic)).child(probe("w"));
    let root = start_root("pool", spec, EventBus::new()).await.expect("start");
    let sup = root.supervisor();
    let started = sup.start_instance(Arc::new(())).await.expect("instance");
    assert_eq!(started.id, "1");
    assert!(matches!(
        sup.restart_child("1").await,
        Err(SupervisorError::SimpleOneForOne)
    ));
    assert!(matches!(
        sup.delete_child("1").await,
        Err(SupervisorError::SimpleOneForOne)
    ));
    assert!(matches!(
        sup.start_child(probe("x")).await,
        Err(SupervisorError::BadStartArgument(..))
    ));
    sup.terminate_child("1").await.expect("terminate");
    assert_eq!(sup.count_children().await.expect("count").specs, 0);
    root.shutdown().await;
}

#[tokio::test]
async fn backoff_delays_restarts_and_shows_restarting() {
    let backoff = Backoff::new(Duration::from_millis(150), Duration::from_secs(1)).jitter(0.0);
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(10))
        .child(probe("slowly").backoff(backoff));
    let root = start_root("t", spec, EventBus::new()).await.expect("start");
    let sup = root.supervisor();
    let cell = cell_of(sup, "slowly").await;
    let crashed_at = Instant::now();
    cell.send_message(ProbeMsg::Panic("x")).expect("send");
    cell.wait(None).await.expect("wait");
    let info = sup.which_children().await.expect("which");
    assert_eq!(info[0].state, ChildState::Restarting);
    assert!(matches!(
        sup.restart_child("slowly").await,
        Err(SupervisorError::Restarting(_))
    ));
    loop {
        let info = sup.which_children().await.expect("which");
        if info[0].state == ChildState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(crashed_at.elapsed() >= Duration::from_millis(150));
    root.shutdown().await;
}

#[tokio::test]
async fn snapshot_and_resolve_walk_the_tree() {
    let pool = SupervisorSpec::new(SupervisorFlags::new(Strategy::Dynamic)).child(probe("worker"));
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::RestForOne))
        .child(probe("db"))
        .child(pool.into_child_spec("workers"));
    let root = start_root("diem", spec, EventBus::new()).await.expect("start");
    let workers = resolve(root.supervisor(), "diem/workers").await.expect("resolve");
    assert_eq!(workers.kind, ChildKind::Supervisor);
    let workers = SupervisorRef::from_cell(workers.cell.expect("running")).expect("a supervisor");
    for _ in 0..3 {
        workers.start_instance(Arc::new(())).await.expect("instance");
    }
    let tree = snapshot(root.supervisor()).await.expect("snapshot");
    assert_eq!(tree.path, "diem");
    assert_eq!(tree.children[1].path, "diem/workers");
    assert_eq!(tree.children[1].size, Some(3));
    assert_eq!(tree.children[1].children[2].path, "diem/workers/3");
    let json = serde_json::to_value(&tree).expect("serialisable");
    assert_eq!(json["children"][0]["state"], "running");
    let w3 = resolve(root.supervisor(), "diem/workers/3")
        .await
        .expect("resolve");
    assert_eq!(w3.id, "3");
    assert!(matches!(
        resolve(root.supervisor(), "diem/nope").await,
        Err(SupervisorError::NotFound(_))
    ));
    root.shutdown().await;
}

#[tokio::test]
async fn a_sized_pool_scales_and_restarts_at_its_scaled_size() {
    let pool = SupervisorSpec::new(SupervisorFlags::new(Strategy::Dynamic).intensity(5))
        .child(probe("w"))
        .sized(3);
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(5))
        .child(pool.into_child_spec("pool"));
    let root = start_root("t", spec, EventBus::new()).await.expect("start");
    let pool = resolve(root.supervisor(), "t/pool").await.expect("pool");
    let sup = pool.supervisor().expect("a supervisor");
    assert_eq!(sup.inspect().await.expect("inspect").running().count(), 3);
    assert_eq!(sup.scale_to(5).await.expect("up"), Scaled { from: 3, to: 5 });
    assert_eq!(sup.scale_to(2).await.expect("down"), Scaled { from: 5, to: 2 });
    let info = sup.inspect().await.expect("inspect");
    let ids: Vec<_> = info.running().map(|c| c.id.clone()).collect();
    assert_eq!(ids, ["1", "2"], "the newest instances stop first");
    assert_eq!(info.target, Some(2));
    // Killed, the pool comes back at the scaled size.
    let killed = pool.kill(None, false).await.expect("kill");
    assert!(matches!(killed.outcome, KillOutcome::Replaced(_)), "{killed:?}");
    let sup = resolve(root.supervisor(), "t/pool")
        .await
        .expect("pool")
        .supervisor()
        .expect("a supervisor");
    assert_eq!(sup.inspect().await.expect("inspect").running().count(), 2);
    assert!(matches!(
        root.supervisor().scale_to(1).await,
        Err(SupervisorError::NotDynamic(_))
    ));
    root.shutdown().await;
}

#[tokio::test]
async fn kill_answers_with_the_replacement_and_refuses_to_exceed_the_intensity() {
    let events = EventBus::new();
    let mut rx = events.subscribe();
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(2)).child(probe("a"));
    let root = start_root("t", spec, events).await.expect("start");
    let sup = root.supervisor();
    let before = cell_of(sup, "a").await;
    let killed = sup.kill_child("a", None, false).await.expect("kill");
    assert_eq!(killed.died.actor, before.get_id().to_string());
    assert_eq!(killed.reason, ExitReason::Injected("killed".into()));
    let KillOutcome::Replaced(new) = killed.outcome else {
        panic!("not replaced: {killed:?}")
    };
    assert_eq!(new.incarnation, 2);
    assert_eq!(
        new.actor,
        cell_of(sup, "a").await.get_id().to_string(),
        "running when answered"
    );
    assert!(killed.recovery_us.is_some());
    let restarted = loop {
        match rx.recv().await.expect("event") {
            Event::Restarted { reason, .. } => break reason,
            _ => continue,
        }
    };
    assert_eq!(restarted.kind(), "injected");
    let graceful = sup
        .kill_child("a", Some("drill".into()), false)
        .await
        .expect("kill");
    assert_eq!(graceful.reason.to_string(), "{injected,drill}");
    // Two restarts used of two: a third would make the supervisor give up.
    let refused = sup.kill_child("a", None, false).await;
    assert!(
        matches!(
            refused,
            Err(SupervisorError::WouldExceedIntensity {
                in_window: 2,
                intensity: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    let tree = snapshot(sup).await.expect("snapshot");
    assert_eq!(
        tree.find("t/a").expect("a").last_exit.as_deref(),
        Some("{injected,drill}")
    );
    assert_eq!(tree.intensity.expect("intensity").in_window, 2);
    // Forced, it goes through and the supervisor gives up as OTP's would.
    let forced = sup.kill_child("a", None, true).await;
    assert!(
        matches!(forced, Err(SupervisorError::Unavailable(_))),
        "{forced:?}"
    );
    assert_eq!(root.wait().await, ExitReason::Shutdown);
    assert!(matches!(
        sup.kill_child("nope", None, false).await,
        Err(SupervisorError::Unavailable(_))
    ));
}

#[tokio::test]
async fn restart_by_path_is_rolling_for_a_pool_and_graceful_for_a_child() {
    let pool = SupervisorSpec::new(SupervisorFlags::new(Strategy::Dynamic).intensity(5))
        .child(probe("w"))
        .sized(2);
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne))
        .child(probe("db"))
        .child(pool.into_child_spec("pool"));
    let root = start_root("t", spec, EventBus::new()).await.expect("start");
    let r = resolve(root.supervisor(), "t/pool").await.expect("pool");
    assert_eq!(
        r.restart().await.expect("rolling"),
        Restarted::Rolling { replaced: 2 }
    );
    let r = resolve(root.supervisor(), "t/pool/3").await.expect("instance");
    assert_eq!(
        r.restart().await.expect("replace"),
        Restarted::Replaced {
            by: "t/pool/5".into()
        }
    );
    let r = resolve(root.supervisor(), "t/db").await.expect("db");
    let Restarted::Restarted { old, new } = r.restart().await.expect("restart") else {
        panic!("a plain restart")
    };
    assert_eq!(
        (old.expect("old").incarnation, new.expect("new").incarnation),
        (1, 2)
    );
    let tree = snapshot(root.supervisor()).await.expect("snapshot");
    assert_eq!(
        tree.find("t/db").expect("db").restarts,
        0,
        "a graceful restart is not a crash restart"
    );
    let ids: Vec<_> = tree.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(ids, ["t", "t/db", "t/pool", "t/pool/4", "t/pool/5"]);
    let json = serde_json::to_string(&tree).expect("json");
    let back: TreeNode = serde_json::from_str(&json).expect("back");
    assert_eq!(back, tree);
    assert!(resolve(root.supervisor(), "t")
        .await
        .expect("root")
        .restart()
        .await
        .is_err());
    root.shutdown().await;
}

/// Dropped when the loop that owns it is cancelled.
struct Flag(Arc<AtomicU32>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_task_child_exits_with_its_loop_and_its_loop_ends_with_the_child() {
    let starts = Arc::new(AtomicU32::new(0));
    let cancelled = Arc::new(AtomicU32::new(0));
    let (s, c) = (starts.clone(), cancelled.clone());
    // A loop that crashes on its first run, panics on its second and then
    // runs until the child is stopped.
    let crashy = ChildSpec::task("crashy", move |_ctx| {
        let (s, c) = (s.clone(), c.clone());
        async move {
            let run = s.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(async move {
                let _flag = Flag(c);
                match run {
                    1 => Err("accept failed".into()),
                    2 => panic!("the loop panicked"),
                    _ => std::future::pending().await,
                }
            })
        }
    });
    // A transient loop that finishes: a normal exit, not restarted.
    let done = ChildSpec::task("done", |_ctx| async { Ok(async { Ok(()) }) }).restart(Restart::Transient);
    // A start that fails: the start error names the child.
    let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(5))
        .child(crashy)
        .child(done);
    let root = start_root("t", spec, EventBus::new()).await.expect("start");
    let sup = root.supervisor().clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = sup.which_children().await.expect("which");
        let crashy = children.iter().find(|c| c.id == "crashy").expect("crashy");
        let done = children.iter().find(|c| c.id == "done").expect("done");
        if crashy.restarts == 2 && crashy.actor.is_some() && done.actor.is_none() {
            let reason = crashy.last_exit.clone().expect("last exit").to_string();
            assert!(reason.contains("the loop panicked"), "{reason}");
            assert_eq!(
                done.restarts, 0,
                "a normal exit of a transient child is not restarted"
            );
            assert_eq!(done.last_exit, Some(ExitReason::Normal));
            break;
        }
        assert!(Instant::now() < deadline, "children: {children:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        cancelled.load(Ordering::SeqCst),
        2,
        "the two ended loops dropped their state"
    );
    root.shutdown().await;
    // Stopping the child cancels the loop that was still running.
    assert_eq!(cancelled.load(Ordering::SeqCst), 3);

    let failing = SupervisorSpec::new(SupervisorFlags::default())
        .child(ChildSpec::task("bind", |_ctx| async {
            Err::<std::future::Ready<TaskResult>, _>("port in use".into())
        }));
    match start_root("t", failing, EventBus::new()).await {
        Err(SupervisorError::StartFailed { id, reason }) => {
            assert_eq!(id, "bind");
            assert!(reason.contains("port in use"), "{reason}");
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
}
