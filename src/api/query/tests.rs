//! Unit tests of [`query`](super).

use super::*;

#[test]
fn callbacks() {
    for ok in ["cb", "a.b", "$", "_x1", "jQuery123_456.done"] {
        assert!(is_callback(ok), "{ok}");
    }
    for bad in ["", "1a", "a..b", "a.", "alert(1)", "a b", "a-b", "x;y", "é"] {
        assert!(!is_callback(bad), "{bad}");
    }
    assert!(!is_callback(&"a".repeat(MAX_CALLBACK + 1)));
}

#[test]
fn length_follows_the_original() {
    assert_eq!(parse("length=2").unwrap().filter.max_len, 1);
    assert_eq!(parse("length=100").unwrap().filter.max_len, 99);
    for ignored in ["1", "101", "-5", "", "9999999999999", "%2B7000"] {
        assert_eq!(
            parse(&format!("length={ignored}")).unwrap().filter.max_len,
            u32::MAX,
            "{ignored}"
        );
    }
    for bad in ["x", "1.5", "-", "5a", " 5"] {
        assert_eq!(
            parse(&format!("length={bad}")).unwrap_err().parameter,
            "length",
            "{bad}"
        );
    }
    assert_eq!(parse("length=10&max_length=5").unwrap().filter.max_len, 5);
}

#[test]
fn errors_name_the_parameter() {
    assert_eq!(parse("encode=xml").unwrap_err().parameter, "encode");
    assert_eq!(parse("callback=alert(1)").unwrap_err().parameter, "callback");
    assert_eq!(parse("c=z").unwrap_err().parameter, "c");
    assert_eq!(parse("c=ab").unwrap_err().parameter, "c");
    assert_eq!(parse("max_length=-1").unwrap_err().parameter, "max_length");
    assert_eq!(
        parse("min_length=5&max_length=4").unwrap_err().parameter,
        "min_length"
    );
    assert_eq!(parse("encode=js&callback=cb").unwrap_err().parameter, "callback");
}

#[test]
fn a_repeated_parameter_takes_its_last_value() {
    assert_eq!(parse("encode=xml&encode=json").unwrap().encode, Encode::Json);
    assert_eq!(parse("encode=json&encode=xml").unwrap_err().parameter, "encode");
    assert_eq!(parse("min_length=x&min_length=3").unwrap().filter.min_len, 3);
}

proptest::proptest! {
    #[test]
    fn pairs_are_what_the_decoder_gives(query in "[a-c=&%+2Bé_]{0,24}") {
        let split: Vec<_> = Pairs::of(&query).collect();
        let decoded: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
        proptest::prop_assert_eq!(split, decoded);
    }
}

#[test]
fn plain_pairs_are_split_in_place() {
    let pairs: Vec<_> = Pairs::of("&encode=json&&c=a=b&flag&=x&").collect();
    let want = [("encode", "json"), ("c", "a=b"), ("flag", ""), ("", "x")];
    assert_eq!(pairs.len(), want.len());
    for ((name, value), (n, v)) in pairs.iter().zip(want) {
        assert!(matches!((name, value), (Cow::Borrowed(a), Cow::Borrowed(b)) if *a == n && *b == v));
    }
    assert!(matches!(Pairs::of("a=%41"), Pairs::Encoded(_)));
    assert!(matches!(Pairs::of("a=b+c"), Pairs::Encoded(_)));
}

#[test]
fn categories_accumulate() {
    let q = parse("c=a&c=l").unwrap();
    assert_eq!(q.filter.categories, 1 | (1 << 11));
}
