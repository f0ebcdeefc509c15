//! Unit tests of [`protocol`](super).

use super::*;

#[test]
fn bad_requests() {
    assert_eq!(parse("{").unwrap_err().1.code, "bad_json");
    assert_eq!(parse("[1]").unwrap_err().1.code, "bad_request");
    assert_eq!(
        parse(r#"{"id":3}"#).unwrap_err(),
        (
            Some(Value::from(3)),
            ProtoError::new("bad_request", "`cmd` is required")
        )
    );
    assert_eq!(parse(r#"{"cmd":5}"#).unwrap_err().1.code, "bad_request");
    assert_eq!(parse(r#"{"cmd":"fly"}"#).unwrap_err().1.code, "unknown_command");
    assert_eq!(parse(r#"{"cmd":"kill"}"#).unwrap_err().1.code, "invalid_argument");
    assert_eq!(
        parse(r#"{"cmd":"kill","path":3}"#).unwrap_err().1.code,
        "invalid_argument"
    );
    assert_eq!(
        parse(r#"{"cmd":"kill","path":""}"#).unwrap_err().1.code,
        "invalid_argument"
    );
    assert_eq!(
        parse(r#"{"cmd":"scale","pool":"p","n":-1}"#).unwrap_err().1.code,
        "invalid_argument"
    );
}

#[test]
fn requests_round_trip() {
    for c in [
        Command::Help,
        Command::Ping,
        Command::Tree,
        Command::Stats,
        Command::Top {
            sort: TopSort::Mailbox,
            limit: Some(5),
        },
        Command::Top {
            sort: TopSort::Msgs,
            limit: None,
        },
        Command::Diagnose,
        Command::Reload,
        Command::Restart {
            path: "diem/store".into(),
        },
        Command::Kill {
            path: "diem/limiter".into(),
            reason: Some("chaos".into()),
            force: false,
        },
        Command::Kill {
            path: "diem/limiter".into(),
            reason: None,
            force: true,
        },
        Command::Scale {
            pool: "diem/workers".into(),
            n: 3,
        },
        Command::LogLevel {
            filter: "debug".into(),
        },
        Command::Shutdown { grace_secs: Some(5) },
        Command::Shutdown { grace_secs: None },
        Command::Upgrade {
            binary: Some("/usr/local/bin/diem".into()),
            timeout_secs: Some(30),
        },
        Command::Upgrade {
            binary: None,
            timeout_secs: None,
        },
        Command::Limiter {
            action: LimiterAction::Get {
                addr: "2001:db8::1".parse().unwrap(),
            },
        },
        Command::Limiter {
            action: LimiterAction::Reset {
                addr: "192.0.2.1".parse().unwrap(),
            },
        },
    ] {
        assert_eq!(parse(&c.to_request().to_string()).unwrap().1, c);
    }
}

#[test]
fn help_is_drawn_from_the_definition() {
    let h = help();
    let names: Vec<_> = h.iter().map(|c| c.cmd.as_str()).collect();
    assert_eq!(
        names,
        [
            "help",
            "ping",
            "tree",
            "stats",
            "top",
            "diagnose",
            "restart",
            "kill",
            "scale",
            "reload",
            "limiter",
            "log-level",
            "ready",
            "cluster",
            "observe",
            "upgrade",
            "shutdown"
        ]
    );
    let kill = h.iter().find(|c| c.cmd == "kill").unwrap();
    assert_eq!(kill.args, "path, reason?, force?");
    assert_eq!(
        kill.description,
        "Fault injection: the child exits abnormally and its supervisor reacts"
    );
    let limiter = h.iter().find(|c| c.cmd == "limiter").unwrap();
    assert_eq!(limiter.args, "action=get|reset, addr");
    let (_, c) = parse(r#"{"cmd":"limiter","action":"reset","addr":"192.0.2.1"}"#).unwrap();
    assert_eq!(c.to_request()["action"], "reset");
    assert_eq!(
        parse(r#"{"cmd":"limiter","action":"get","addr":"nope"}"#)
            .unwrap_err()
            .1
            .code,
        "invalid_argument"
    );
}

#[test]
fn a_request_names_where_it_runs() {
    let r = parse_request(r#"{"cmd":"tree","node":"b","id":1}"#).unwrap();
    assert_eq!(r.target, Target::Node("b".into()));
    let r = parse_request(r#"{"cmd":"reload","cluster":true}"#).unwrap();
    assert_eq!(r.target, Target::Cluster);
    assert_eq!(Request::line(&r.command, &r.target)["cluster"], true);
    assert_eq!(
        parse_request(r#"{"cmd":"tree","node":"b","cluster":true}"#)
            .unwrap_err()
            .1
            .code,
        "invalid_argument"
    );
    assert_eq!(
        parse_request(r#"{"cmd":"tree","node":7}"#).unwrap_err().1.code,
        "invalid_argument"
    );
}

#[test]
fn replies_echo_the_id() {
    let r: Value = serde_json::from_str(&ok(Some("a".into()), &serde_json::json!({"x": 1}))).unwrap();
    assert_eq!(r, serde_json::json!({"ok": true, "id": "a", "x": 1}));
    let e: Value = serde_json::from_str(&error(None, &ProtoError::new("c", "m"))).unwrap();
    assert_eq!(e["error"]["code"], "c");
    assert_eq!(e["id"], Value::Null);
}
