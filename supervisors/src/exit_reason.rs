//! Why an actor stopped, in Erlang's terms.
//!
//! ractor reports an exit as an optional reason string (graceful stop or
//! kill) or as a failure (an `Err` or a panic in a handler). OTP decides
//! restarts on a small vocabulary of reasons: `normal`, `shutdown` and
//! `{shutdown, Term}` are *normal* exits, everything else (including
//! `killed`) is *abnormal*. [`ExitReason`] is that vocabulary, plus
//! `{injected, Term}` for exits an operator caused on purpose.
//!
//! ```
//! use supervisors::ExitReason;
//!
//! let r = ExitReason::from_stop_reason(Some("{shutdown,bye}"));
//! assert_eq!(r, ExitReason::ShutdownWith("bye".into()));
//! assert!(r.is_normal());
//! assert_eq!(r.to_string(), "{shutdown,bye}");
//! assert!(!ExitReason::from_stop_reason(Some("boom")).is_normal());
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// The reason an actor exited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ExitReason {
    /// `normal`: the actor finished its work (a stop with no reason).
    Normal,
    /// `shutdown`: the actor was asked to stop by its supervisor.
    Shutdown,
    /// `{shutdown, Term}`: a shutdown carrying extra information.
    ShutdownWith(String),
    /// `killed`: the actor was killed without running its cleanup.
    Killed,
    /// `{injected, Reason}`: an operator injected this exit on purpose (a
    /// fault drill, `kill`). Abnormal, so restarted like a crash, but told
    /// apart from one in logs and metrics.
    Injected(String),
    /// Any other reason: a crash. Panics carry their message here.
    Error(String),
}

impl ExitReason {
    /// Whether OTP counts this exit as normal (`normal`, `shutdown`,
    /// `{shutdown, _}`): a transient child is not restarted after it.
    pub fn is_normal(&self) -> bool {
        matches!(self, Self::Normal | Self::Shutdown | Self::ShutdownWith(_))
    }

    /// Interprets the reason string of a ractor stop (as given to
    /// `ActorCell::stop` or reported in `SupervisionEvent::ActorTerminated`).
    ///
    /// `None`, `"normal"` and ractor's `"Drained"` are [`ExitReason::Normal`];
    /// `"killed"` and ractor's `"actor_task_cancelled"` are
    /// [`ExitReason::Killed`].
    pub fn from_stop_reason(reason: Option<&str>) -> Self {
        match reason {
            None | Some("normal") | Some("Drained") => Self::Normal,
            Some("shutdown") => Self::Shutdown,
            Some("killed") | Some("actor_task_cancelled") => Self::Killed,
            Some(other) => {
                let term = |prefix: &str| other.strip_prefix(prefix).and_then(|rest| rest.strip_suffix('}'));
                if let Some(term) = term("{shutdown,") {
                    Self::ShutdownWith(term.to_owned())
                } else if let Some(term) = term("{injected,") {
                    Self::Injected(term.to_owned())
                } else {
                    Self::Error(other.to_owned())
                }
            }
        }
    }

    /// A short class of the reason for metric labels: `normal`,
    /// `shutdown`, `killed`, `injected` or `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Shutdown | Self::ShutdownWith(_) => "shutdown",
            Self::Killed => "killed",
            Self::Injected(_) => "injected",
            Self::Error(_) => "error",
        }
    }

    /// The string to pass to ractor's `stop` so that a supervisor reads this
    /// reason back with [`ExitReason::from_stop_reason`].
    pub fn to_stop_reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ExitReason {
    /// Formats like Erlang's `~w`: `normal`, `shutdown`, `{shutdown,bye}`,
    /// `killed`, or the error text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::ShutdownWith(term) => write!(f, "{{shutdown,{term}}}"),
            Self::Killed => f.write_str("killed"),
            Self::Injected(term) => write!(f, "{{injected,{term}}}"),
            Self::Error(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitReason;

    #[test]
    fn round_trips_through_stop_strings() {
        for r in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("bye".into()),
            ExitReason::Killed,
            ExitReason::Injected("killed".into()),
            ExitReason::Error("boom".into()),
        ] {
            assert_eq!(ExitReason::from_stop_reason(Some(&r.to_stop_reason())), r);
        }
        assert_eq!(ExitReason::from_stop_reason(None), ExitReason::Normal);
    }

    #[test]
    fn only_normal_and_shutdowns_are_normal() {
        assert!(ExitReason::Normal.is_normal());
        assert!(ExitReason::Shutdown.is_normal());
        assert!(ExitReason::ShutdownWith("x".into()).is_normal());
        assert!(!ExitReason::Killed.is_normal());
        assert!(!ExitReason::Injected("chaos".into()).is_normal());
        assert!(!ExitReason::Error("shutdown_not".into()).is_normal());
    }
}
