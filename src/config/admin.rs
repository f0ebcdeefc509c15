//! `[admin]`: the write API's token and the admin listener.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::{invalid, MIN_TOKEN_BYTES};

/// `[admin]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token of `POST` and `DELETE` (at least 16 bytes), and a
    /// login of the admin listener; empty disables the write API. Trimmed
    /// (a value made from a file ends in a newline); whitespace inside is
    /// refused.
    pub token: String,
    /// The admin listener (the observer page, its event stream and its
    /// actions), `host:port`; empty turns it off. Every caller logs in —
    /// loopback included: with the token, or with the one-time link `diem
    /// ctl observe` prints. Off loopback (a wildcard included) a token is
    /// required.
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            token: String::new(),
            addr: "127.0.0.1:8081".to_owned(),
        }
    }
}

impl AdminConfig {
    /// The admin listener's address; `None` when it is off (or invalid,
    /// which `Config::validate` refuses).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.addr.trim().parse().ok()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.token.is_empty() && self.token.len() < MIN_TOKEN_BYTES {
            return invalid(
                "admin.token",
                &format!("at least {MIN_TOKEN_BYTES} bytes (or empty, which disables writes)"),
            );
        }
        if !self.addr.trim().is_empty() {
            match self.listen() {
                None => return invalid("admin.addr", "host:port (e.g. 127.0.0.1:8081), or empty to turn the admin listener off"),
                Some(addr) if !addr.ip().is_loopback() && self.token.is_empty() => {
                    return invalid(
                        "admin.token",
                        &format!("a token of at least {MIN_TOKEN_BYTES} bytes: admin.addr {addr} is not a loopback address"),
                    )
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}
