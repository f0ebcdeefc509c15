//! Unit tests of [`load`](super).

use super::*;

#[test]
fn buckets_are_powers_of_two_of_microseconds() {
    assert_eq!(bucket(0), 0);
    assert_eq!(bucket(1), 1);
    assert_eq!(bucket(7), 3);
    assert_eq!(bucket(8), 4);
    assert_eq!(bucket(1023), 10);
    assert_eq!(bucket(u64::MAX), BUCKETS - 1);
}

#[test]
fn the_mailbox_is_sent_minus_taken_and_its_maximum_is_kept_until_reset() {
    let load = ActorLoad::new("t".into());
    for _ in 0..5 {
        load.sent();
    }
    for _ in 0..3 {
        drop(load.begin(0));
    }
    let s = load.sample();
    assert_eq!((s.mailbox, s.mailbox_max, s.handled), (2, 5, 3));
    load.reset_max();
    assert_eq!(load.sample().mailbox_max, 2);
    // A send the mailbox refused is taken back.
    load.sent();
    load.unsent();
    assert_eq!(load.sample().mailbox, 2);
    // More taken than sent (sends past the counted handles): clamped.
    for _ in 0..4 {
        drop(load.begin(0));
    }
    assert_eq!(load.sample().mailbox, 0);
}

#[test]
fn a_running_handler_is_busy_and_timed() {
    let load = ActorLoad::new("t".into());
    let running = load.begin(7);
    std::thread::sleep(Duration::from_millis(20));
    let s = load.sample();
    assert!(s.busy.is_some_and(|b| b >= Duration::from_millis(20)), "{s:?}");
    assert_eq!(s.kind, 7);
    drop(running);
    let s = load.sample();
    assert!(s.busy.is_none());
    assert!(s.handle_max_us >= 20_000, "{s:?}");
    assert_eq!(
        quantile_us(&s.histogram, 0.99),
        Some(1 << bucket(s.handle_max_us))
    );
}
