//! Unit tests of [`history`](super).

use super::*;

#[test]
fn an_actor_gone_for_five_minutes_is_forgotten() {
    let mut h = History::default();
    h.push("a", 1, 0);
    h.end_tick();
    for _ in 0..POINTS {
        h.push("b", 1, 0);
        h.end_tick();
    }
    assert!(h.rates("a").is_none());
    assert_eq!(h.rates("b").unwrap().len(), POINTS);
    assert_eq!(h.mailbox("b").unwrap().len(), POINTS);
}

#[test]
fn no_more_than_max_actors_are_kept() {
    let mut h = History::default();
    for i in 0..MAX_ACTORS + 10 {
        h.push(&format!("diem/pool/{i}"), 1, 0);
    }
    assert_eq!(h.len(), MAX_ACTORS);
}

/// The figure docs/observer.md gives: five minutes of 10,000 actors.
#[test]
fn ten_thousand_actors_for_five_minutes_fit_in_a_bounded_heap() {
    let mut h = History::default();
    for _ in 0..POINTS {
        for i in 0..10_000 {
            h.push(&format!("diem/workers/{i}"), 1_000, 70_000);
        }
        h.end_tick();
    }
    assert_eq!(
        h.mailbox("diem/workers/7").unwrap()[0],
        u32::from(u16::MAX),
        "saturating"
    );
    let bytes = h.heap_bytes();
    eprintln!(
        "history of 10,000 actors × {POINTS} points: {bytes} bytes ({:.1} MiB)",
        bytes as f64 / 1048576.0
    );
    assert!(bytes < 20 * 1024 * 1024, "{bytes}");
}
