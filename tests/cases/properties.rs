//! Property tests of the three parsers that take outside input: the
//! hitokoto query string, the control protocol, the sentences-bundle.

use diem::api::query::{is_callback, parse as parse_query, Encode};
use diem::control::protocol::{parse as parse_control, Command};
use diem::store::bundle::parse_entries;
use proptest::prelude::*;
use serde_json::{json, Value};

const PARAMETERS: [&str; 6] = ["encode", "callback", "c", "length", "min_length", "max_length"];

fn percent_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any query string: no panic; an error names a known parameter; a
    /// success is internally consistent.
    #[test]
    fn any_query_string_is_handled(query in ".{0,200}", raw in proptest::collection::vec(any::<u8>(), 0..120)) {
        let raw = String::from_utf8_lossy(&raw).into_owned();
        for q in [query.as_str(), raw.as_str()] {
            match parse_query(q) {
                Err(e) => prop_assert!(PARAMETERS.contains(&e.parameter), "{e}"),
                Ok(p) => {
                    prop_assert!(p.callback.as_deref().is_none_or(is_callback));
                    prop_assert!(p.filter.categories < (1 << 12));
                    prop_assert!(!(p.encode == Encode::Js && p.callback.is_some()));
                }
            }
        }
    }

    /// Well-formed queries parse to exactly what they say.
    #[test]
    fn well_formed_queries_parse_exactly(
        encode in prop_oneof![Just(None), Just(Some("text")), Just(Some("json")), Just(Some("js"))],
        cats in proptest::collection::btree_set(0u8..12, 0..4),
        min in proptest::option::of(0u32..200),
        max in proptest::option::of(200u32..10_000),
        length in proptest::option::of(-5i64..150),
        callback in proptest::option::of("[a-z_$][a-z0-9_$]{0,8}(\\.[a-z_$][a-z0-9_$]{0,8}){0,2}"),
        junk in "[a-z]{1,6}",
    ) {
        let mut parts = vec![format!("_{junk}=1")];
        if let Some(e) = encode { parts.push(format!("encode={e}")); }
        for c in &cats { parts.push(format!("c={}", char::from(b'a' + c))); }
        if let Some(m) = min { parts.push(format!("min_length={m}")); }
        if let Some(m) = max { parts.push(format!("max_length={m}")); }
        if let Some(l) = length { parts.push(format!("length={l}")); }
        if let Some(cb) = &callback { parts.push(format!("callback={}", percent_encode(cb))); }
        let q = parse_query(&parts.join("&"));
        if encode == Some("js") && callback.is_some() {
            prop_assert_eq!(q.unwrap_err().parameter, "callback");
            return Ok(());
        }
        let q = q.unwrap();
        prop_assert_eq!(q.callback, callback);
        prop_assert_eq!(q.encode, match encode { Some("json") => Encode::Json, Some("js") => Encode::Js, _ => Encode::Text });
        prop_assert_eq!(q.filter.categories, cats.iter().fold(0u16, |m, c| m | (1 << c)));
        prop_assert_eq!(q.filter.min_len, min.unwrap_or(0));
        let from_length = match length { Some(l) if (2..=100).contains(&l) => (l - 1) as u32, _ => u32::MAX };
        prop_assert_eq!(q.filter.max_len, max.unwrap_or(u32::MAX).min(from_length));
    }

    /// Any line: no panic, and an error reply always has a known code.
    #[test]
    fn any_control_line_is_handled(line in ".{0,300}") {
        if let Err((_, e)) = parse_control(&line) {
            prop_assert!(["bad_json", "bad_request", "unknown_command", "invalid_argument"].contains(&e.code));
        }
    }

    /// Any JSON object: the command is what its fields say, or the error
    /// names what is wrong; the id comes back either way.
    #[test]
    fn any_control_object_is_handled(
        cmd in prop_oneof![Just("help"), Just("tree"), Just("kill"), Just("scale"), Just("log-level"), Just("shutdown"), Just("nope")],
        path in proptest::option::of(prop_oneof![Just(json!("diem/workers/1")), Just(json!(3)), Just(json!("")), Just(json!(null))]),
        n in proptest::option::of(prop_oneof![Just(json!(4)), Just(json!("4")), Just(json!(-1)), Just(json!(1.5)), Just(json!([]))]),
        id in proptest::option::of(prop_oneof![Just(json!(1)), Just(json!("x")), Just(json!({"a": 1}))]),
    ) {
        let mut req = json!({"cmd": cmd});
        if let Some(p) = &path { req["path"] = p.clone(); req["pool"] = p.clone(); req["filter"] = p.clone(); }
        if let Some(n) = &n { req["n"] = n.clone(); req["grace_secs"] = n.clone(); }
        if let Some(i) = &id { req["id"] = i.clone(); }
        match parse_control(&req.to_string()) {
            Ok((got_id, command)) => {
                prop_assert_eq!(&got_id, &id);
                match command {
                    Command::Kill { path: p, .. } => prop_assert_eq!(Some(json!(p)), path),
                    Command::Scale { n: got, .. } => prop_assert!(n.as_ref().is_some_and(|v| *v == json!(got) || *v == json!(got.to_string()))),
                    Command::Shutdown { grace_secs } => prop_assert!(grace_secs.is_none() || n.is_some()),
                    _ => {}
                }
            }
            Err((got_id, e)) => {
                prop_assert_eq!(&got_id, &id);
                prop_assert!(e.code == "unknown_command" || e.code == "invalid_argument", "{}", e);
            }
        }
    }

    /// Any bytes as a sentences file: no panic, and an error names the file
    /// and a position.
    #[test]
    fn any_sentences_file_is_handled(text in ".{0,400}") {
        if let Err(e) = parse_entries(&text, "x.json", Some('a')) {
            prop_assert_eq!(e.file.as_str(), "x.json");
            prop_assert!(e.position.starts_with("line ") || e.position.starts_with("entry "), "{}", e);
        }
    }

    /// Valid entries are accepted; breaking one field of one entry rejects
    /// the file, naming that entry.
    #[test]
    fn one_bad_entry_rejects_the_file_and_is_named(
        texts in proptest::collection::vec("[^\"\\\\]{1,20}", 1..12),
        victim in any::<prop::sample::Index>(),
        breakage in 0usize..5,
    ) {
        let entries: Vec<Value> = texts.iter().enumerate().map(|(i, t)| json!({
            "id": i + 1, "uuid": uuid::Uuid::new_v4().to_string(), "hitokoto": format!("x{t}"), "type": "a",
            "from": "f", "from_who": null, "creator": "c", "created_at": "1468605909", "length": 1,
        })).collect();
        let good = Value::Array(entries.clone()).to_string();
        prop_assert_eq!(parse_entries(&good, "a.json", Some('a')).unwrap().len(), texts.len());

        let i = victim.index(entries.len());
        let mut bad = entries;
        match breakage {
            0 => bad[i]["uuid"] = json!("nope"),
            1 => bad[i]["type"] = json!("z"),
            2 => bad[i]["hitokoto"] = json!(" "),
            3 => bad[i]["created_at"] = json!("yesterday"),
            _ => bad[i]["id"] = json!(0),
        }
        let e = parse_entries(&Value::Array(bad).to_string(), "a.json", Some('a')).unwrap_err();
        prop_assert_eq!(e.position, format!("entry {} (id {}): ", i + 1, if breakage == 4 { 0 } else { i + 1 }));
    }
}
