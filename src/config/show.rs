//! `diem config show`: the effective configuration, each key with the
//! layer its value came from, secrets redacted.
//!
//! ```
//! use diem::config::show::redact;
//!
//! assert_eq!(redact("admin.token", "0123456789abcdef"), "\"<redacted>\"");
//! assert_eq!(
//!     redact("postgres.url", "postgres://app:hunter2@db:5432/diem"),
//!     "\"postgres://app:<redacted>@db:5432/diem\""
//! );
//! assert_eq!(redact("http.addr", "127.0.0.1:8080"), "\"127.0.0.1:8080\"");
//! ```

use std::fmt::Write;

use figment::Figment;
use serde_json::Value;

use crate::config::env::variable_of;
use crate::config::{Config, ConfigError};

/// Keys whose whole value is a secret.
const SECRETS: &[&str] = &["admin.token"];

/// `value` of `key` as shown: a secret as `<redacted>`, a URL with its
/// password replaced.
pub fn redact(key: &str, value: &str) -> String {
    let shown = if SECRETS.contains(&key) && !value.is_empty() {
        "<redacted>".to_owned()
    } else {
        redact_url_password(value)
    };
    Value::String(shown).to_string()
}

/// `scheme://user:password@host…` with the password replaced.
pub fn redact_url_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return value.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => value.to_owned(),
    }
}

/// Where the value of `key` came from.
fn layer(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(m) if m.name == "environment" => variable_of(key),
        Some(m) if m.name.contains("TOML") => match &m.source {
            Some(source) => source.to_string(),
            None => "file".to_owned(),
        },
        _ => "default".to_owned(),
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
