//! Unit tests of [`snapshot`](super).

use super::*;

fn sentence(id: i64, category: char, text: &str) -> Sentence {
    Sentence {
        id,
        uuid: Uuid::new_v4(),
        hitokoto: text.to_owned(),
        category,
        from: "t".into(),
        from_who: None,
        creator: "t".into(),
        length: crate::store::sentence::char_length(text),
        created_at: 0,
    }
}

#[test]
fn a_changed_snapshot_serves_the_change_at_once() {
    let s = Snapshot::build(
        vec![sentence(1, 'a', "xx"), sentence(2, 'b', "yy")],
        Source::Embedded,
    );
    let added = sentence(3, 'a', "zzz");
    let removed = s.entries[0].uuid;
    let c = s.changed(Some(&added), Some(removed));
    assert_eq!(c.len(), 2);
    assert!(c.get(&removed).is_none());
    assert_eq!(c.get(&added.uuid).map(|e| e.id), Some(3));
    let a_only = Filter {
        categories: 1,
        ..Filter::default()
    };
    assert_eq!(c.count(&a_only), 1);
    let detail: serde_json::Value = serde_json::from_slice(&c.get(&added.uuid).unwrap().detail).unwrap();
    assert_eq!(
        (detail["hitokoto"].as_str(), detail["type"].as_str()),
        (Some("zzz"), Some("a"))
    );
}

#[test]
fn filters_by_category_and_length() {
    let s = Snapshot::build(
        vec![
            sentence(1, 'a', "xx"),
            sentence(2, 'a', "xxxx"),
            sentence(3, 'b', "xxx"),
            sentence(4, 'l', "x"),
        ],
        Source::Embedded,
    );
    assert_eq!(s.count(&Filter::default()), 4);
    let a_only = Filter {
        categories: 1,
        ..Filter::default()
    };
    assert_eq!(s.count(&a_only), 2);
    let short = Filter {
        max_len: 3,
        min_len: 2,
        ..Filter::default()
    };
    assert_eq!(s.count(&short), 2);
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..100 {
        let e = s.pick(&short, &mut rng).unwrap();
        assert!((2..=3).contains(&e.length));
    }
    let none = Filter {
        min_len: 5,
        ..Filter::default()
    };
    assert!(s.pick(&none, &mut rng).is_none());
}

#[test]
fn pick_is_uniform() {
    let s = Snapshot::build(
        (0..10).map(|i| sentence(i, ['a', 'c', 'k'][i as usize % 3], &"x".repeat(i as usize + 1))),
        Source::Embedded,
    );
    let mut rng = fastrand::Rng::with_seed(42);
    let mut hits = [0u32; 10];
    let n = 100_000;
    for _ in 0..n {
        let e = s.pick(&Filter::default(), &mut rng).unwrap();
        hits[e.id as usize] += 1;
    }
    // Chi-square with 9 degrees of freedom; 27.88 is the p = 0.001 point.
    let expected = f64::from(n) / 10.0;
    let chi2: f64 = hits
        .iter()
        .map(|&h| (f64::from(h) - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 27.88, "chi2 = {chi2}, hits = {hits:?}");
}
