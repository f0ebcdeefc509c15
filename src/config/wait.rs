//! The one duration type of the configuration: every timeout, interval and
//! delay is a [`Wait`], written with a unit (`"250ms"`, `"5s"`, `"6m"`:
//! humantime's syntax) and bounded when it is read — from `MIN_MS`
//! milliseconds (1 unless the key says otherwise) to 365 days
//! ([`LONGEST_WAIT`]): timers add a wait to the clock, whose arithmetic
//! panics past its range. A value out of bounds is refused with the key
//! that holds it, like any value of the wrong type.
//!
//! ```
//! use std::time::Duration;
//! use diem::config::Wait;
//!
//! let w: Wait = serde_json::from_str("\"250ms\"").unwrap();
//! assert_eq!(w.get(), Duration::from_millis(250));
//! assert_eq!(serde_json::to_string(&w).unwrap(), "\"250ms\"");
//! let e = serde_json::from_str::<Wait>("\"366days\"").unwrap_err();
//! assert!(e.to_string().contains("at most 365 days"), "{e}");
//! assert!(serde_json::from_str::<Wait>("\"0s\"").is_err());
//! // A key that may be zero says so in its type.
//! assert!(serde_json::from_str::<Wait<0>>("\"0s\"").is_ok());
//! ```

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest timeout or interval a setting may hold (365 days). Timers add a
/// wait to the clock, whose arithmetic panics past its range; the code that
/// keeps a timer caps what it is given at this bound too.
pub const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A timeout, interval or delay from `MIN_MS` milliseconds to
/// [`LONGEST_WAIT`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wait<const MIN_MS: u64 = 1>(Duration);

impl<const MIN_MS: u64> Wait<MIN_MS> {
    /// A wait of `ms` milliseconds (for defaults; the bound is checked when
    /// a value is read from the configuration).
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// A wait of `secs` seconds (for defaults).
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// `duration` if it is within the bounds, else what was expected.
    pub fn new(duration: Duration) -> Result<Self, String> {
        let min = Duration::from_millis(MIN_MS);
        if duration < min || duration > LONGEST_WAIT {
            let min = humantime::format_duration(min);
            return Err(format!(
                "a duration of at least {min} and at most 365 days (e.g. 250ms, 5s, 6m), found {}",
                humantime::format_duration(duration)
            ));
        }
        Ok(Self(duration))
    }
}

impl<const MIN_MS: u64> Deref for Wait<MIN_MS> {
    type Target = Duration;

    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl<const MIN_MS: u64> From<Wait<MIN_MS>> for Duration {
    fn from(wait: Wait<MIN_MS>) -> Duration {
        wait.0
    }
}

impl<const MIN_MS: u64> PartialEq<Wait<MIN_MS>> for Duration {
    fn eq(&self, other: &Wait<MIN_MS>) -> bool {
        *self == other.0
    }
}

impl<const MIN_MS: u64> PartialOrd<Wait<MIN_MS>> for Duration {
    fn partial_cmp(&self, other: &Wait<MIN_MS>) -> Option<std::cmp::Ordering> {
        self.partial_cmp(&other.0)
    }
}

impl<const MIN_MS: u64> fmt::Debug for Wait<MIN_MS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<const MIN_MS: u64> fmt::Display for Wait<MIN_MS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<const MIN_MS: u64> Serialize for Wait<MIN_MS> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de, const MIN_MS: u64> Deserialize<'de> for Wait<MIN_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let duration = humantime::parse_duration(text.trim())
            .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e} (e.g. 250ms, 5s, 6m)")))?;
        Self::new(duration).map_err(serde::de::Error::custom)
    }
}
