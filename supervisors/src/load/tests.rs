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
fn one_message_in_four_is_timed_and_long_handlers_are_seen_by_the_watcher() {
    let load = ActorLoad::new("t".into());
    for _ in 0..4_000 {
        drop(load.begin(0));
    }
    let timed: u64 = load.sample().histogram.iter().sum();
    assert!((800..1_200).contains(&timed), "about one in four: {timed}");
    // A long handler, timed or not, is seen running by the watcher.
    let running = load.begin(7);
    let first = Instant::now();
    assert_eq!(
        load.observe(first).map(|(b, k, _)| (b, k)),
        Some((Duration::ZERO, 7))
    );
    std::thread::sleep(Duration::from_millis(20));
    let (busy, _, _) = load.observe(Instant::now()).unwrap();
    assert!(busy >= Duration::from_millis(20), "{busy:?}");
    assert!(load.sample().busy.is_some_and(|b| b >= Duration::from_millis(20)));
    drop(running);
    let s = load.sample();
    assert!(s.busy.is_none());
    assert!(s.handle_max_us >= 20_000, "{s:?}");
    assert!(quantile_us(&s.histogram, 0.5).is_some());
}
