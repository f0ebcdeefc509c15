//! Supervisor flags: OTP's `#{strategy, intensity, period, auto_shutdown}`.
//!
//! ```
//! use std::time::Duration;
//! use supervisors::{AutoShutdown, Strategy, SupervisorFlags};
//!
//! let flags = SupervisorFlags::new(Strategy::OneForAll).intensity(3).period(Duration::from_secs(10));
//! assert_eq!(flags.auto_shutdown, AutoShutdown::Never);
//! // OTP's defaults: intensity 1 within 5 seconds.
//! let d = SupervisorFlags::default();
//! assert_eq!((d.intensity, d.period), (1, Duration::from_secs(5)));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a supervisor reacts when a child that must be restarted exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// `one_for_one`: restart only the child that exited.
    OneForOne,
    /// `one_for_all`: terminate all other children (reverse start order),
    /// then restart all of them (start order).
    OneForAll,
    /// `rest_for_one`: terminate the children started after the one that
    /// exited (reverse start order), then restart it and them (start order).
    RestForOne,
    /// `simple_one_for_one`: every child is an instance of one template
    /// spec, added at run time with `start_child`; instances are restarted
    /// one for one and terminated all at once on shutdown.
    #[serde(rename = "simple_one_for_one")]
    Dynamic,
}

/// When a supervisor stops by itself because significant children exited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never (the default). Significant children are not allowed.
    #[default]
    Never,
    /// As soon as any significant child exits without being restarted.
    AnySignificant,
    /// Once every significant child has exited without being restarted.
    AllSignificant,
}

/// The flags of a supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorFlags {
    /// The restart strategy.
    pub strategy: Strategy,
    /// Restarts allowed within `period`; one more makes the supervisor give
    /// up (OTP's `intensity`, default 1).
    pub intensity: u32,
    /// The sliding window for `intensity` (OTP's `period`, default 5 s).
    pub period: Duration,
    /// Automatic shutdown on significant children's exits.
    pub auto_shutdown: AutoShutdown,
}

impl SupervisorFlags {
    /// Flags with the given strategy and OTP's defaults for the rest.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
        }
    }

    /// Sets the restart intensity.
    pub fn intensity(mut self, intensity: u32) -> Self {
        self.intensity = intensity;
        self
    }

    /// Sets the intensity period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// Sets the auto-shutdown mode.
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }
}

impl Default for SupervisorFlags {
    /// `one_for_one`, intensity 1, period 5 s, auto_shutdown never.
    fn default() -> Self {
        Self::new(Strategy::OneForOne)
    }
}
