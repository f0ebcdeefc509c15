//! Unit tests of [`pipe`](super).

use super::*;

#[test]
fn parses_the_replies_of_set_nx_get() {
    assert_eq!(parse(b"$-1\r\n"), Some((Reply::Nil, 5)));
    assert_eq!(parse(b"_\r\n"), Some((Reply::Nil, 3)));
    assert_eq!(parse(b"$4\r\n1234\r\n$-1\r\n"), Some((Reply::Int(1234), 10)));
    assert_eq!(parse(b"$4\r\n12"), None);
    assert_eq!(parse(b"+OK\r\n"), Some((Reply::Ok, 5)));
    assert!(matches!(parse(b"-ERR syntax\r\n"), Some((Reply::Error(e), 13)) if e == "ERR syntax"));
    assert!(matches!(parse(b"$3\r\nabc\r\n"), Some((Reply::Other(_), 9))));
}

#[test]
fn parses_the_replies_of_evalsha() {
    assert_eq!(
        parse(b"*3\r\n:0\r\n:-1\r\n:123456789012\r\n+OK\r\n"),
        Some((Reply::Ints(vec![0, -1, 123_456_789_012]), 28))
    );
    assert_eq!(parse(b"*0\r\n"), Some((Reply::Ints(vec![]), 4)));
    assert_eq!(parse(b"*-1\r\n"), Some((Reply::Nil, 5)));
    // Incomplete: the header, an element, half of one.
    assert_eq!(parse(b"*2\r\n"), None);
    assert_eq!(parse(b"*2\r\n:1\r\n"), None);
    assert_eq!(parse(b"*2\r\n:1\r\n:2"), None);
    assert!(matches!(
        parse(b"-NOSCRIPT No matching script. Please use EVAL.\r\n"),
        Some((Reply::Error(e), _)) if e.starts_with("NOSCRIPT")
    ));
    assert!(matches!(
        parse(b"*2\r\n:1\r\n$1\r\nx\r\n"),
        Some((Reply::Other(_), _))
    ));
}

#[test]
fn encodes_a_command() {
    let mut out = Vec::new();
    let (reply, _rx) = oneshot::channel();
    set_nx_get(
        &mut out,
        &SetNx {
            key: "p:rl:1.2.3.4/32".into(),
            value: -12,
            px_ms: 10_000,
            reply,
        },
    );
    assert_eq!(
        out,
        b"*7\r\n$3\r\nSET\r\n$15\r\np:rl:1.2.3.4/32\r\n$3\r\n-12\r\n$2\r\nNX\r\n$3\r\nGET\r\n$2\r\nPX\r\n$5\r\n10000\r\n"
    );
}

/// A Redis stand-in on loopback that answers every `SET` with nil,
/// `delay` after it came (`None`: never answers).
async fn redis_like(delay: Option<Duration>) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut answered = 0;
        loop {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&chunk[..n]);
            let commands = seen.windows(4).filter(|w| w == b"*7\r\n").count();
            let Some(delay) = delay else { continue };
            while answered < commands {
                tokio::time::sleep(delay).await;
                socket.write_all(b"$-1\r\n").await.unwrap();
                answered += 1;
            }
        }
    });
    Target {
        addr,
        username: None,
        password: None,
        database: None,
        tls: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_without_a_reply_is_cut_off_at_its_timeout() {
    let target = redis_like(None).await;
    let (pipe, drive) = Pipe::connect(&target, Duration::from_secs(1), None)
        .await
        .unwrap();
    let drive = tokio::spawn(drive);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let began = Instant::now();
    assert!(pipe.set_nx_get("k".into(), 1, 1).await.is_err());
    let waited = began.elapsed();
    assert!(matches!(drive.await.unwrap(), PipeError::Timeout(_)));
    // Not at the timer's first deadline (300 ms after the batch began).
    assert!(waited >= Duration::from_secs(1), "cut off after {waited:?}");
    assert!(waited < Duration::from_millis(1100), "cut off after {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_huge_timeout_neither_overflows_nor_expires_early() {
    let target = redis_like(None).await;
    let (pipe, drive) = Pipe::connect(&target, Duration::MAX, None).await.unwrap();
    let drive = tokio::spawn(drive);
    let began = Instant::now();
    assert!(pipe.set_nx_get("k".into(), 1, 1).await.is_err());
    assert!(matches!(drive.await.unwrap(), PipeError::Timeout(_)));
    assert!(began.elapsed() >= LONGEST_WAIT);
}

#[tokio::test(start_paused = true)]
async fn replies_spread_over_several_timeouts_are_not_cut_off() {
    let target = redis_like(Some(Duration::from_millis(400))).await;
    let (pipe, drive) = Pipe::connect(&target, Duration::from_secs(1), None)
        .await
        .unwrap();
    let drive = tokio::spawn(drive);
    let began = Instant::now();
    for i in 0..8 {
        assert_eq!(pipe.set_nx_get(format!("k{i}"), 1, 1).await.unwrap(), None);
    }
    assert!(began.elapsed() >= Duration::from_millis(3200));
    assert!(!drive.is_finished());
}

proptest::proptest! {
    /// The constant parts and `itoa`'s digits make the same bytes as
    /// the generic encoding of the command's parts with std's text.
    #[test]
    fn set_nx_get_is_the_generic_encoding(key in "\\PC{0,40}", value: i64, px_ms: i64) {
        let (reply, _rx) = oneshot::channel();
        let op = SetNx { key, value, px_ms, reply };
        let mut fast = Vec::new();
        set_nx_get(&mut fast, &op);
        let (v, px) = (op.value.to_string(), op.px_ms.to_string());
        let mut generic = Vec::new();
        command(
            &mut generic,
            &[b"SET", op.key.as_bytes(), v.as_bytes(), b"NX", b"GET", b"PX", px.as_bytes()],
        );
        proptest::prop_assert_eq!(fast, generic);
    }

    /// `EVALSHA`'s encoding is the generic encoding of its parts.
    #[test]
    fn evalsha_is_the_generic_encoding(
        keys in proptest::collection::vec("\\PC{0,20}", 0..6),
        args in proptest::collection::vec(proptest::num::i64::ANY, 0..6),
    ) {
        let (reply, _rx) = oneshot::channel();
        let sha: Arc<str> = Arc::from("0123456789abcdef0123456789abcdef01234567");
        let op = EvalSha { sha: sha.clone(), keys: keys.clone().into(), args: args.clone(), reply };
        let mut fast = Vec::new();
        evalsha(&mut fast, &op);
        let numkeys = keys.len().to_string();
        let args: Vec<String> = args.iter().map(i64::to_string).collect();
        let mut parts: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), numkeys.as_bytes()];
        parts.extend(keys.iter().map(|k| k.as_bytes()));
        parts.extend(args.iter().map(|a| a.as_bytes()));
        let mut generic = Vec::new();
        command(&mut generic, &parts);
        proptest::prop_assert_eq!(fast, generic);
    }
}
