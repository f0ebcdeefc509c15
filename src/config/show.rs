//! `diem config show`: the effective configuration, each key with the
//! layer its value came from, secrets redacted.
//!
//! Secret-bearing keys are [`SECRET_KEYS`]: the whole value of the admin
//! token and the cluster cookie; the password inside a store's URL — in
//! its userinfo, a `password=` query parameter, or a `password=` of a
//! `key=value` connection string. [`redact_secrets`] is what every
//! printer of a URL uses (`config show`, the logs).
//!
//! ```
//! use diem::config::show::{redact, redact_secrets};
//!
//! assert_eq!(redact("admin.token", "0123456789abcdef"), "\"<redacted>\"");
//! assert_eq!(
//!     redact("postgres.url", "postgres://app:hunter2@db:5432/diem"),
//!     "\"postgres://app:<redacted>@db:5432/diem\""
//! );
//! assert_eq!(
//!     redact_secrets("postgres://db/diem?user=app&password=hunter2&sslmode=require"),
//!     "postgres://db/diem?user=app&password=<redacted>&sslmode=require"
//! );
//! assert_eq!(
//!     redact_secrets("host=db user=app password='hunter 2' dbname=diem"),
//!     "host=db user=app password=<redacted> dbname=diem"
//! );
//! assert_eq!(redact("http.addr", "127.0.0.1:8080"), "\"127.0.0.1:8080\"");
//! ```

use std::fmt::Write;

use figment::Figment;
use serde_json::Value;

use crate::config::load::Origin;
use crate::config::{Config, ConfigError};

/// Keys whose whole value is a secret.
const SECRETS: &[&str] = &["admin.token", "cluster.cookie"];

/// Every key that can carry a secret: the whole value, or a password
/// inside a URL.
pub const SECRET_KEYS: &[&str] = &["admin.token", "cluster.cookie", "postgres.url", "redis.url"];

/// `value` of `key` as shown: a secret as `<redacted>`, a URL or
/// connection string with its password replaced.
pub fn redact(key: &str, value: &str) -> String {
    let shown = if SECRETS.contains(&key) && !value.is_empty() {
        "<redacted>".to_owned()
    } else {
        redact_secrets(value)
    };
    Value::String(shown).to_string()
}

/// `scheme://user:password@host…` with the password replaced.
pub fn redact_url_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    // The authority ends at the first '/', '?' or '#'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return value.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}{tail}"),
        None => value.to_owned(),
    }
}

/// Whether `name` (of a query parameter or a conninfo key) holds a secret.
fn is_password_key(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name == "password" || name == "sslpassword" || name.ends_with("_password")
}

/// A URL's or a `key=value` connection string's passwords replaced: in
/// the userinfo, in `password=` (and `sslpassword=`) query parameters, and
/// in `password=` of a libpq connection string, quoted or not.
pub fn redact_secrets(value: &str) -> String {
    if value.contains("://") {
        let url = redact_url_password(value);
        let Some((head, query)) = url.split_once('?') else {
            return url;
        };
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_password_key(name) => format!("{name}=<redacted>"),
                _ => pair.to_owned(),
            })
            .collect();
        let mut out = format!("{head}?{}", params.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        return out;
    }
    redact_conninfo(value)
}

/// libpq's `key=value` form: `password=secret` or `password='a \' b'`.
fn redact_conninfo(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let name = before.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
        let after = &after[1..];
        // The value: up to the closing quote, or the next space.
        let value_len = if let Some(quoted) = after.strip_prefix('\'') {
            let mut escaped = false;
            let mut end = quoted.len();
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            (1 + end).min(after.len())
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        out.push_str(before);
        out.push('=');
        if is_password_key(name) {
            out.push_str("<redacted>");
        } else {
            out.push_str(&after[..value_len]);
        }
        rest = &after[value_len..];
    }
    out.push_str(rest);
    out
}

/// Where the value of `key` came from: the variable, the file, or
/// `default`.
fn layer(figment: &Figment, key: &str) -> String {
    match Origin::of(figment, key) {
        Origin::Env(variable) => variable,
        Origin::File(source) => source,
        Origin::Default => "default".to_owned(),
    }
}

/// The effective configuration of `figment`'s layers as TOML-like lines.
pub fn render(figment: &Figment) -> Result<String, ConfigError> {
    let config = Config::extract(figment.clone())?;
    let mut out = String::new();
    let Ok(Value::Object(sections)) = serde_json::to_value(&config) else {
        return Ok(out);
    };
    for (section, keys) in sections {
        let _ = writeln!(out, "[{section}]");
        if let Value::Object(keys) = keys {
            for (name, value) in keys {
                let key = format!("{section}.{name}");
                let shown = match &value {
                    Value::String(s) => redact(&key, s),
                    other => other.to_string(),
                };
                let _ = writeln!(out, "{name} = {shown}  # {}", layer(figment, &key));
            }
        }
        out.push('\n');
    }
    Ok(out)
}
