//! `diem ctl`: send one command over the control socket and show the
//! reply.
//!
//! Exit codes: 0 when the reply is ok, 1 when it is an error, 2 when the
//! socket cannot be reached (the message names the path).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::control::protocol::Command;
use crate::control::render;

/// Longest wait for a reply (a rolling restart of a large pool takes a while).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// The server closed or answered garbage.
    #[error("bad reply from {path}: {reason}")]
    BadReply {
        /// The path used.
        path: String,
        /// What happened.
        reason: String,
    },
}

/// Sends `request` to the socket at `path` and returns the reply.
pub async fn call(path: &Path, request: &Value) -> Result<Value, CtlError> {
    let shown = path.display().to_string();
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|e| CtlError::Unreachable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
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
    match tokio::time::timeout(REPLY_TIMEOUT, reader.read_line(&mut reply)).await {
        Err(_) => return Err(bad(format!("no reply within {REPLY_TIMEOUT:?}"))),
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

/// Runs `diem ctl`; returns the exit code.
pub async fn run(socket: &Path, command: &Command, json_output: bool) -> i32 {
    let reply = match call(socket, &command.to_request()).await {
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
    let ok = reply["ok"] == Value::Bool(true);
    if json_output {
        println!("{reply}");
    } else if ok {
        print!(
            "{}",
            render::render(command, &reply, std::io::stdout().is_terminal())
        );
    } else {
        eprintln!(
            "diem ctl: {} ({})",
            reply["error"]["message"].as_str().unwrap_or("error"),
            reply["error"]["code"].as_str().unwrap_or("?")
        );
    }
    if ok {
        0
    } else {
        1
    }
}
