//! Logging: `tracing` with a filter that can be changed while running.
//!
//! Lines go to stderr through [`tracing_appender::non_blocking()`], so a slow
//! terminal or pipe never stalls a request; human-readable by default
//! (coloured only on a terminal), one JSON object per line with
//! `--log-format json`. The filter has `RUST_LOG` syntax; [`LogControl`]
//! swaps it live (`diem ctl log-level`, `diem ctl reload`).
//!
//! ractor_cluster's own lines (one or more per connection to the cluster
//! port, whoever opens it) are printed only when the filter names
//! `ractor_cluster`; otherwise the refusals among them are counted and
//! summarised at most once a second ([`cluster::noise`](crate::cluster::noise)).

use std::io::IsTerminal;
use std::sync::Mutex;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::cluster::noise::{Reason, NOISE};
use crate::config::LogFormat;

/// Whether a filter names ractor_cluster (then its lines are printed).
fn names_ractor_cluster(filter: &str) -> bool {
    filter.contains("ractor_cluster")
}

/// Counts the refusals that ractor_cluster reports in its lines.
struct ClusterRefusals;

impl<S: tracing::Subscriber> Layer<S> for ClusterRefusals {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !event.metadata().target().starts_with("ractor_cluster") {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Some(reason) = Reason::of_ractor_cluster_line(&message.0) {
            NOISE.refused(reason);
        }
    }
}

/// A log filter that could not be set.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// Not `RUST_LOG` syntax.
    #[error("invalid filter `{filter}`: {reason}")]
    Invalid {
        /// The filter given.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The subscriber refused the new filter.
    #[error("cannot change the filter: {0}")]
    Reload(String),
}

/// Changes the log filter of the running process.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("filter", &self.current())
            .finish()
    }
}

impl LogControl {
    /// The filter in effect.
    pub fn current(&self) -> String {
        self.current.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Replaces the filter; an invalid one is rejected and nothing changes.
    pub fn set(&self, filter: &str) -> Result<(), FilterError> {
        let parsed = EnvFilter::try_new(filter).map_err(|e| FilterError::Invalid {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })?;
        self.handle
            .reload(parsed)
            .map_err(|e| FilterError::Reload(e.to_string()))?;
        if let Ok(mut current) = self.current.lock() {
            *current = filter.to_owned();
        }
        NOISE.set_verbose(names_ractor_cluster(filter));
        Ok(())
    }
}

/// Installs the global subscriber. `filter` is used unless `RUST_LOG` is set.
/// Keep the returned guard alive until exit: dropping it flushes the lines
/// still queued.
pub fn init(filter: &str, format: LogFormat) -> (LogControl, WorkerGuard) {
    let effective = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| filter.to_owned());
    let env_filter = EnvFilter::try_new(&effective).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter_layer, handle) = reload::Layer::new(env_filter);
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    NOISE.set_verbose(names_ractor_cluster(&effective));
    let registry = tracing_subscriber::registry()
        .with(filter_layer)
        .with(ClusterRefusals);
    // ractor opens a span per actor; they nest with the tree and would
    // prefix every line with a chain of actor ids. Lines name their source.
    // ractor_cluster's lines only when asked for (see the module doc).
    let no_actor_spans = filter_fn(|meta| {
        !(meta.is_span() && meta.target().starts_with("ractor"))
            && (!meta.target().starts_with("ractor_cluster") || NOISE.verbose())
    });
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer)
                    .with_filter(no_actor_spans),
            )
            .try_init(),
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(writer)
                    .with_filter(no_actor_spans),
            )
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging was already set up: {e}");
    }
    let control = LogControl {
        handle,
        current: Mutex::new(effective),
    };
    (control, guard)
}
