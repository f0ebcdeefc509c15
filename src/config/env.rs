//! The environment layer of the config: `DIEM_<SECTION>__<KEY>` variables,
//! typed by the key they set.
//!
//! Only names with a double underscore after the prefix are config; other
//! `DIEM_*` variables — the ones Kubernetes injects for a Service named
//! `diem` (`DIEM_PORT=tcp://…`, `DIEM_SERVICE_HOST=…`) — are ignored
//! (reported by [`foreign_variables`] for a debug log line). A value is
//! read as the type of the key it sets: a string key takes the text as
//! written (`DIEM_ADMIN__TOKEN=123` is the string `"123"`), a boolean
//! accepts `true/false/1/0/yes/no` in any case, a list is comma-separated,
//! a number is parsed as one. An unknown key is an error naming it.
//!
//! ```
//! use diem::config::env::Environment;
//! use diem::config::Config;
//! use figment::{providers::Serialized, Figment};
//!
//! let vars = [
//!     ("DIEM_ADMIN__TOKEN", "1234567890123456"),
//!     ("DIEM_LOG__ACCESS", "No"),
//!     ("DIEM_LIMITER__TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
//!     ("DIEM_PORT", "tcp://10.0.0.7:8080"),
//! ];
//! let env = Environment::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
//! let config: Config = Figment::from(Serialized::defaults(Config::default())).merge(env).extract().unwrap();
//! assert_eq!(config.admin.token, "1234567890123456");
//! assert!(!config.log.access);
//! assert_eq!(config.limiter.trusted_proxies.len(), 2);
//!
//! let unknown = Environment::from_vars([("DIEM_HTTP__ADRR".to_string(), "x".to_string())]);
//! assert!(unknown.unwrap_err().to_string().contains("http.adrr"));
//! ```

use figment::providers::Serialized;
use figment::value::{Dict, Map, Num, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::config::{Config, ConfigError};

/// The prefix of every config variable.
pub const PREFIX: &str = "DIEM_";

/// The config variables of an environment, as a figment provider.
#[derive(Debug, Clone)]
pub struct Environment {
    data: Dict,
}

/// The variable that sets `key` (`workers.count` → `DIEM_WORKERS__COUNT`).
pub fn variable_of(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// `DIEM_*` variables of this process that are not config (no `__`).
pub fn foreign_variables() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with(PREFIX) && !k[PREFIX.len()..].contains("__"))
        .collect()
}

/// The config variable a non-config `DIEM_*` name was almost surely meant
/// as: one underscore between the section and the key (`DIEM_REDIS_URL`
/// for `DIEM_REDIS__URL`). Such a variable is ignored — it could be
/// Kubernetes' — but never silently: `serve` warns and `config check` says
/// so.
///
/// ```
/// use diem::config::env::meant;
///
/// assert_eq!(meant("DIEM_REDIS_URL").as_deref(), Some("DIEM_REDIS__URL"));
/// assert_eq!(meant("DIEM_HTTP_MAX_CONNECTIONS").as_deref(), Some("DIEM_HTTP__MAX_CONNECTIONS"));
/// assert_eq!(meant("DIEM_SERVICE_HOST"), None);
/// assert_eq!(meant("DIEM_REDIS__URL"), None);
/// ```
pub fn meant(name: &str) -> Option<String> {
    let rest = name.strip_prefix(PREFIX)?;
    if rest.contains("__") {
        return None;
    }
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    rest.match_indices('_').find_map(|(i, _)| {
        let key = format!("{}.{}", &rest[..i], &rest[i + 1..]).to_ascii_lowercase();
        defaults.find_value(&key).is_ok().then(|| variable_of(&key))
    })
}

fn loose_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `text` as a value of the type `default` has.
fn typed(key: &str, variable: &str, text: &str, default: &Value) -> Result<Value, ConfigError> {
    let invalid = |expected: &str| ConfigError::Env {
        variable: variable.to_owned(),
        key: key.to_owned(),
        message: format!("expected {expected}, found `{text}`"),
    };
    Ok(match default {
        Value::Bool(..) => Value::Bool(
            Tag::Default,
            loose_bool(text).ok_or_else(|| invalid("true, false, 1, 0, yes or no"))?,
        ),
        Value::Num(..) => Value::Num(
            Tag::Default,
            text.trim().parse::<Num>().map_err(|_| invalid("a number"))?,
        ),
        Value::Array(..) => Value::from(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect::<Vec<Value>>(),
        ),
        Value::Dict(..) => {
            return Err(ConfigError::Env {
                variable: variable.to_owned(),
                key: key.to_owned(),
                message: "is a section: set its keys (`__` between section and key)".to_owned(),
            })
        }
        // Strings (addresses, durations, paths, names, tokens) as written.
        _ => Value::from(text),
    })
}

impl Environment {
    /// The config variables of this process.
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::from_vars(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// The config variables among `vars` (name, value).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let defaults = Figment::from(Serialized::defaults(Config::default()));
        let mut data = Dict::new();
        for (name, text) in vars {
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if !rest.contains("__") {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let key = path.join(".");
            let default = defaults.find_value(&key).map_err(|_| ConfigError::Env {
                variable: name.clone(),
                key: key.clone(),
                message: "no such config key".to_owned(),
            })?;
            let value = typed(&key, &name, &text, &default)?;
            insert(&mut data, &path, value);
        }
        Ok(Self { data })
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment").interpolater(|_: &Profile, keys: &[&str]| variable_of(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let env = Environment::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .map_err(|e| e.to_string())?;
        Config::extract(Figment::from(Serialized::defaults(Config::default())).merge(env))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn kubernetes_service_variables_are_not_config() {
        let c = env(&[
            ("DIEM_PORT", "tcp://10.0.0.1:8080"),
            ("DIEM_SERVICE_HOST", "10.0.0.1"),
            ("DIEM_API_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
        ])
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn strings_stay_strings_and_booleans_are_loose() {
        let c = env(&[
            ("DIEM_NODE__NAME", "42"),
            ("DIEM_REDIS__KEY_PREFIX", "1"),
            ("DIEM_ADMIN__TOKEN", "0123456789012345"),
            ("DIEM_LIMITER__ENABLED", "YES"),
            ("DIEM_LOG__ACCESS", "0"),
        ])
        .unwrap();
        assert_eq!((c.node.name.as_str(), c.redis.key_prefix.as_str()), ("42", "1"));
        assert_eq!(c.admin.token, "0123456789012345");
        assert!(c.limiter.enabled && !c.log.access);
    }

    #[test]
    fn errors_name_the_key_once() {
        let e = env(&[("DIEM_WORKERS__COUNT", "many")]).unwrap_err();
        assert!(
            e.contains("`workers.count`") && e.contains("DIEM_WORKERS__COUNT"),
            "{e}"
        );
        assert!(!e.contains("default."), "{e}");
        let e = env(&[("DIEM_LIMITER__ENABLED", "maybe")]).unwrap_err();
        assert!(e.contains("`limiter.enabled`"), "{e}");
        let e = env(&[("DIEM_NOPE__X", "1")]).unwrap_err();
        assert!(e.contains("`nope.x`") && e.contains("no such config key"), "{e}");
        let e = env(&[("DIEM_HTTP__ADDR", "nowhere")]).unwrap_err();
        assert!(e.contains("`http.addr`") && e.contains("DIEM_HTTP__ADDR"), "{e}");
    }
}
