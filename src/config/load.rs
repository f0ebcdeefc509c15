//! Loading the config: its layers, and errors that name each key once.
//!
//! [`Config::layers`] stacks the defaults, the TOML file and the
//! environment ([`env`](super::env)); [`Config::extract`] turns them into a
//! validated [`Config`], each problem described as
//! `` `key`: what is wrong (where the value came from) ``.

use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;

use crate::config::env::{variable_of, Environment};
use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};

/// Keys that were renamed when durations got units: (old, new, example).
pub(crate) const RENAMED: &[(&str, &str, &str)] = &[
    ("http.header_read_timeout_ms", "http.header_read_timeout", "5s"),
    ("http.body_read_timeout_ms", "http.body_read_timeout", "10s"),
    ("http.shutdown_grace_secs", "http.shutdown_grace", "30s"),
    ("postgres.connect_timeout_ms", "postgres.connect_timeout", "2s"),
    (
        "postgres.statement_timeout_ms",
        "postgres.statement_timeout",
        "5s",
    ),
    ("postgres.retry_max_ms", "postgres.retry_max", "5s"),
    ("postgres.health_interval_ms", "postgres.health_interval", "1s"),
    ("redis.command_timeout_ms", "redis.command_timeout", "250ms"),
    ("redis.health_interval_ms", "redis.health_interval", "500ms"),
    ("limiter.period_secs", "limiter.period", "360s"),
    ("control.idle_timeout_ms", "control.idle_timeout", "30s"),
];

/// Where a key's value came from — the one reading of figment's metadata
/// for errors, `config check` and `config show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An environment variable (`DIEM_WORKERS__COUNT`).
    Env(String),
    /// A file (its path), or another named source.
    File(String),
    /// Nothing set it.
    Default,
}

impl Origin {
    /// The origin `metadata` gives `key`.
    fn of_metadata(metadata: Option<&figment::Metadata>, key: &str) -> Self {
        match metadata {
            Some(m) if m.name == "environment" => Origin::Env(variable_of(key)),
            // A TOML file (its path), or a TOML string (`from_toml_str`).
            Some(m) if m.name.contains("TOML") => Origin::File(
                m.source
                    .as_ref()
                    .map_or_else(|| m.name.to_string(), ToString::to_string),
            ),
            // The defaults (figment names them by the Rust type).
            _ => Origin::Default,
        }
    }

    /// Where `key`'s value in `figment` came from.
    pub(crate) fn of(figment: &Figment, key: &str) -> Self {
        Self::of_metadata(figment.find_metadata(key), key)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Env(variable) => write!(f, "from {variable}"),
            Origin::File(source) => write!(f, "in {source}"),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Where `key`'s value came from: `from DIEM_…`, `in <file>`, or `the
/// default`.
fn origin_of(figment: &Figment, key: &str) -> String {
    Origin::of(figment, key).to_string()
}

/// One figment error as one line: the key, what is wrong, and where the
/// value came from.
fn describe(e: &figment::error::Error) -> String {
    use figment::error::Kind;
    let path = e.path.join(".");
    let what = match &e.kind {
        Kind::UnknownField(..) => match RENAMED.iter().find(|(old, _, _)| *old == path) {
            Some((_, new, example)) => {
                format!("was renamed: use `{new}`, a duration with its unit such as \"{example}\"")
            }
            None => "no such key".to_owned(),
        },
        other => other.to_string(),
    };
    let origin = match Origin::of_metadata(e.metadata.as_ref(), &path) {
        Origin::Default => String::new(),
        known => format!(" ({known})"),
    };
    if path.is_empty() {
        format!("{what}{origin}")
    } else {
        format!("`{path}`: {what}{origin}")
    }
}

impl Config {
    /// The layers of a node's config: the defaults, `path` (which must be
    /// a file when given; without it, `config/diem.toml` if present), then
    /// the environment of this process.
    pub fn layers(path: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if p.is_dir() => {
                return Err(ConfigError::File {
                    path: p.to_owned(),
                    reason: "is a directory; give the path of a TOML file".to_owned(),
                })
            }
            Some(p) if !p.is_file() => {
                return Err(ConfigError::File {
                    path: p.to_owned(),
                    reason: "does not exist".to_owned(),
                })
            }
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_PATH));
            }
            None => {}
        }
        Ok(figment.merge(Environment::from_process()?))
    }

    /// Loads and validates the layers of [`Config::layers`].
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::extract(Self::layers(path)?)
    }

    /// Parses a TOML document over the defaults (no environment), validates.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)))
    }

    /// Extracts and validates a config from its layers. Secrets given
    /// whole (`admin.token`, `cluster.cookie`) are trimmed — a value made
    /// from a file often ends in a newline — and refused if whitespace
    /// remains inside. A value out of range is named with where it came
    /// from.
    pub fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.into_iter().map(|e| describe(&e)).collect()))?;
        for (key, value) in [
            ("admin.token", &mut config.admin.token),
            ("cluster.cookie", &mut config.cluster.cookie),
        ] {
            let trimmed = value.trim();
            if trimmed.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid {
                    key,
                    expected: format!(
                        "a secret without whitespace inside ({})",
                        origin_of(&figment, key)
                    ),
                });
            }
            if trimmed.len() != value.len() {
                *value = trimmed.to_owned();
            }
        }
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { key, expected } => ConfigError::Invalid {
                key,
                expected: format!("{expected} ({})", origin_of(&figment, key)),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// What `config check` should tell beyond validity: secrets that had
    /// whitespace around them (trimmed), `DIEM_*` variables that look like
    /// config but are ignored.
    pub fn notes(figment: &Figment) -> Vec<String> {
        let mut notes = Vec::new();
        for key in ["admin.token", "cluster.cookie"] {
            if let Ok(raw) = figment.extract_inner::<String>(key) {
                if raw.trim().len() != raw.len() {
                    notes.push(format!(
                        "`{key}` ({}) has whitespace around it: it is trimmed",
                        origin_of(figment, key)
                    ));
                }
            }
        }
        for variable in crate::config::env::foreign_variables() {
            if let Some(meant) = crate::config::env::meant(&variable) {
                notes.push(format!(
                    "{variable} is ignored: not a config variable; did you mean {meant}?"
                ));
            }
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_take_units_and_old_keys_name_the_new_one() {
        let c = Config::from_toml_str("[http]\nshutdown_grace = \"1m 30s\"").unwrap();
        assert_eq!(c.http.shutdown_grace.get(), Duration::from_secs(90));
        for (old, new, _) in RENAMED {
            let (section, key) = old.split_once('.').unwrap();
            let e = Config::from_toml_str(&format!("[{section}]\n{key} = 5")).unwrap_err();
            assert!(e.to_string().contains(&format!("use `{new}`")), "{old}: {e}");
        }
    }
}
