//! `diem ctl`: send one command over the control socket and show the
//! reply.
//!
//! Exit codes: 0 when the reply is ok, 1 when it is an error (or no reply
//! came within `--timeout`), 2 when the socket cannot be reached (the
//! message names the path). `help` is answered offline, from the same
//! definition the server uses.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::control::options::{CtlOptions, DEFAULT_CTL_TIMEOUT};
use crate::control::protocol::{help, Command, ErrorReply, Request, Target};
use crate::control::render;
use crate::control::reply::HelpReply;
use crate::load::diagnose::Level;

/// Why `diem ctl` failed before it got a reply.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The socket could not be reached.
    #[error("cannot reach the control socket at {path}: {reason} (is diem running? see --socket)")]
    Unreachable {
        /// The path tried.
        path: String,
        /// What happened.
        reason: String,
    },
    /// The server closed, answered garbage, or did not answer in time.
    #[error("bad reply from {path}: {reason}")]
    BadReply {
        /// The path used.
        path: String,
        /// What happened.
        reason: String,
    },
}

/// Sends `request` to the socket at `path` and returns the reply, waiting
/// at most `timeout` for it.
pub async fn call(path: &Path, request: &Value, timeout: Duration) -> Result<Value, CtlError> {
    let shown = path.display().to_string();
    let connect = tokio::time::timeout(timeout, UnixStream::connect(path)).await;
    let mut stream = match connect {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(CtlError::Unreachable {
                path: shown,
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(CtlError::Unreachable {
                path: shown,
                reason: format!("no connection within {timeout:?}"),
            })
        }
    };
    // The server must be this user or root: a socket another user put in
    // our path (a directory taken over before diem made it) is told
    // nothing, `shutdown` included.
    let me = rustix::process::geteuid().as_raw();
    match stream.peer_cred().map(|c| c.uid()) {
        Ok(uid) if uid == me || uid == 0 || me == 0 => {}
        Ok(uid) => {
            return Err(CtlError::Unreachable {
                path: shown,
                reason: format!(
                    "it is served by uid {uid}, neither this user ({me}) nor root; refusing to send to it \
                     (another user may have taken its directory)"
                ),
            })
        }
        Err(e) => {
            return Err(CtlError::Unreachable {
                path: shown,
                reason: format!("cannot tell who serves it: {e}"),
            })
        }
    }
    let mut line = request.to_string();
    line.push('\n');
    let bad = |reason: String| CtlError::BadReply {
        path: shown.clone(),
        reason,
    };
    // A server that refuses the connection replies and closes before reading:
    // a failed write is reported only if no reply can be read either.
    let written = stream.write_all(line.as_bytes()).await;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    match tokio::time::timeout(timeout, reader.read_line(&mut reply)).await {
        Err(_) => return Err(bad(format!("no reply within {timeout:?} (see --timeout)"))),
        Ok(Ok(n)) if n > 0 => {}
        Ok(result) => {
            let reason = match (written, result) {
                (Err(e), _) | (Ok(()), Err(e)) => e.to_string(),
                (Ok(()), Ok(_)) => "the connection closed without a reply".to_owned(),
            };
            return Err(bad(reason));
        }
    }
    serde_json::from_str(&reply).map_err(|e| bad(format!("{e}: {reply}")))
}

/// Whether to colour the output: on a terminal, unless `NO_COLOR` is set
/// to anything non-empty (<https://no-color.org>).
fn colour() -> bool {
    wants_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR"))
}

fn wants_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The command as sent, and how long to wait for its reply: `--timeout`
/// (default 5 s), except for `upgrade`, where `--timeout` is how long the
/// new process may take to be ready, and the reply may take that plus the
/// switch (or the server's `control.upgrade_timeout` plus the switch).
fn with_timeout(command: &Command, timeout: Option<Duration>) -> (Command, Duration) {
    match command {
        Command::Upgrade { binary, .. } => {
            let binary = binary
                .as_ref()
                .map(|b| std::path::absolute(b).unwrap_or_else(|_| b.clone()));
            let wait = timeout.map_or(Duration::from_secs(3600), |t| t + Duration::from_secs(30));
            (
                Command::Upgrade {
                    binary,
                    timeout_secs: timeout.map(|t| t.as_secs().max(1)),
                },
                wait,
            )
        }
        other => (other.clone(), timeout.unwrap_or(DEFAULT_CTL_TIMEOUT)),
    }
}

/// Sends the command once and prints the reply; returns the exit code.
async fn once(socket: &Path, command: &Command, options: &CtlOptions) -> i32 {
    let target = options.target();
    let (command, wait) = with_timeout(command, options.timeout);
    let request = Request::line(&command, &target);
    let reply = match call(socket, &request, wait).await {
        Ok(r) => r,
        Err(e @ CtlError::Unreachable { .. }) => {
            eprintln!("diem ctl: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("diem ctl: {e}");
            return 1;
        }
    };
    if reply["ok"] != Value::Bool(true) {
        let e: ErrorReply = serde_json::from_value(reply["error"].clone()).unwrap_or(ErrorReply {
            code: "?".into(),
            message: reply.to_string(),
        });
        if options.json {
            println!("{reply}");
        }
        eprintln!("diem ctl: {} ({})", e.message, e.code);
        return 1;
    }
    if options.json {
        println!("{reply}");
    } else if target == Target::Cluster {
        print!("{}", render::cluster(&command, &reply, colour()));
    } else {
        print!("{}", render::render(&command, &reply, colour()));
    }
    if command == Command::Diagnose {
        // The worst finding's level (of every member with --cluster; one
        // that did not answer is critical), for scripts and probes.
        let level_of =
            |r: &Value| serde_json::from_value::<Level>(r["level"].clone()).unwrap_or(Level::Critical);
        let level = match reply["nodes"].as_object() {
            Some(nodes) if target == Target::Cluster => {
                nodes.values().map(level_of).max().unwrap_or(Level::Critical)
            }
            _ => level_of(&reply),
        };
        return level.exit_code();
    }
    0
}

/// Runs `diem ctl`; returns the exit code.
pub async fn run(socket: &Path, command: &Command, options: &CtlOptions) -> i32 {
    if *command == Command::Help {
        let reply = HelpReply { commands: help() };
        if options.json {
            println!("{}", crate::control::protocol::ok(None, &reply));
        } else {
            print!("{}", render::help(&reply));
        }
        return 0;
    }
    // `top` is a screen refreshed every second on a terminal, as etop.
    let top_screen =
        matches!(command, Command::Top { .. }) && !options.json && std::io::stdout().is_terminal();
    if !options.watch && !top_screen {
        return once(socket, command, options).await;
    }
    loop {
        if std::io::stdout().is_terminal() {
            // Home and clear, as `watch` does.
            print!("\x1b[H\x1b[2J");
        }
        let code = once(socket, command, options).await;
        if code == 2 {
            return code;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wants_colour;

    #[test]
    fn no_color_is_respected() {
        assert!(wants_colour(true, None));
        assert!(wants_colour(true, Some("".into())));
        assert!(!wants_colour(true, Some("1".into())));
        assert!(!wants_colour(false, None));
    }
}
