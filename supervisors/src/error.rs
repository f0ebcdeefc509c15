//! Errors of the supervisor API, named after OTP's.

use std::time::Duration;

use ractor::SpawnErr;
use thiserror::Error;

/// An error returned by a supervisor call or a supervisor start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SupervisorError {
    /// `start_child`: a child with this id is already running.
    #[error("child `{0}` is already started")]
    AlreadyStarted(String),
    /// `start_child`: a stopped child with this id exists (restart or delete it).
    #[error("child `{0}` is already present")]
    AlreadyPresent(String),
    /// No child with this id.
    #[error("no child `{0}`")]
    NotFound(String),
    /// `restart_child` / `delete_child`: the child is running.
    #[error("child `{0}` is running")]
    Running(String),
    /// `restart_child` / `delete_child`: the child is waiting to be restarted.
    #[error("child `{0}` is restarting")]
    Restarting(String),
    /// The call is not supported by a dynamic (`simple_one_for_one`) supervisor.
    #[error("not supported by a simple_one_for_one supervisor")]
    SimpleOneForOne,
    /// The call needs a dynamic supervisor (or a spec on a static one).
    #[error("start_child on `{0}` needs {1}")]
    BadStartArgument(String, &'static str),
    /// A child spec or the flags are invalid.
    #[error("invalid child spec `{id}`: {reason}")]
    BadSpec {
        /// The offending child id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A child failed to start.
    #[error("child `{id}` failed to start: {reason}")]
    StartFailed {
        /// The child that failed.
        id: String,
        /// Its start error.
        reason: String,
    },
    /// The supervisor is not running (or stopped during the call).
    #[error("supervisor unavailable: {0}")]
    Unavailable(String),
    /// The call needs a dynamic (`simple_one_for_one`) supervisor.
    #[error("`{0}` is not a simple_one_for_one supervisor")]
    NotDynamic(String),
    /// `kill`: the restart it causes would exceed the supervisor's restart
    /// intensity, so the supervisor would give up (and take its siblings
    /// down with it).
    #[error(
        "killing `{id}` would make `{supervisor}` give up: {in_window} of its {intensity} restarts \
         per {period:?} are used"
    )]
    WouldExceedIntensity {
        /// The child.
        id: String,
        /// Its supervisor's path.
        supervisor: String,
        /// Restarts inside the window now.
        in_window: usize,
        /// The supervisor's intensity.
        intensity: u32,
        /// The supervisor's period.
        period: Duration,
    },
    /// The child has no running process.
    #[error("child `{0}` has no running process")]
    NotRunning(String),
}

impl SupervisorError {
    /// OTP's name of the error, e.g. `already_started`, `not_found`.
    pub fn otp_name(&self) -> &'static str {
        match self {
            Self::AlreadyStarted(_) => "already_started",
            Self::AlreadyPresent(_) => "already_present",
            Self::NotFound(_) => "not_found",
            Self::Running(_) => "running",
            Self::Restarting(_) => "restarting",
            Self::SimpleOneForOne => "simple_one_for_one",
            Self::BadStartArgument(..) => "badarg",
            Self::BadSpec { .. } => "bad_child_spec",
            Self::StartFailed { .. } => "start_failed",
            Self::Unavailable(_) => "noproc",
            Self::NotDynamic(_) => "not_simple_one_for_one",
            Self::WouldExceedIntensity { .. } => "would_exceed_intensity",
            Self::NotRunning(_) => "not_running",
        }
    }
}

/// Turns a ractor spawn error back into a [`SupervisorError`] (the child's
/// own start error when it was one).
pub(crate) fn spawn_error(id: &str, err: SpawnErr) -> SupervisorError {
    if let SpawnErr::StartupFailed(inner) = &err {
        if let Some(e) = inner.downcast_ref::<SupervisorError>() {
            return e.clone();
        }
    }
    SupervisorError::StartFailed {
        id: id.to_owned(),
        reason: err.to_string(),
    }
}
