//! The limiter's decisions as the IETF rate-limit fields
//! (draft-ietf-httpapi-ratelimit-headers-11), which the connection sends
//! beside the legacy `X-RateLimit-*` three, from the same decision: `RateLimit-Policy` names the limiter's GCRA policy, `RateLimit`
//! says what is left of it. Both are Structured Fields (RFC 9651): a list
//! of one item, the string `"default"` with integer parameters.

use std::cell::RefCell;

use hyper::header::{HeaderName, HeaderValue};

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The `RateLimit-Policy` field of the limiter's GCRA (`burst`, `count`
/// per `period`): the policy `"default"`, its quota `q` the requests
/// admitted at once (`burst + 1`, what `X-RateLimit-Limit` says and what
/// `r` of [`ratelimit`] counts down from) and its window `w` the seconds in
/// which a spent quota comes back whole (`q × period / count`, rounded
/// up). Made once per setting (`LimiterSettings::policy`).
///
/// ```
/// use diem::limiter::fields::ratelimit_policy;
///
/// // The defaults: 36 at once, one more every 10 s.
/// assert_eq!(ratelimit_policy(35, 36, 360), "\"default\";q=36;w=360");
/// // 5 at once, one more every 2 s: whole again after 10 s.
/// assert_eq!(ratelimit_policy(4, 30, 60), "\"default\";q=5;w=10");
/// ```
pub fn ratelimit_policy(burst: u64, count: u64, period_secs: u64) -> HeaderValue {
    let quota = burst.saturating_add(1);
    let window = (u128::from(quota) * u128::from(period_secs)).div_ceil(u128::from(count.max(1)));
    HeaderValue::from_str(&format!("\"default\";q={quota};w={window}"))
        .unwrap_or_else(|_| HeaderValue::from_static("\"default\""))
}

/// The `RateLimit` field of one decision: `r` requests remaining now, `t`
/// seconds until the quota is whole again (as `X-RateLimit-Remaining` and
/// `X-RateLimit-Reset`).
///
/// Every limited answer carries one, and the values repeat: a client's
/// `r` follows from its `t` (both from the same theoretical arrival time),
/// so each thread keeps, for every `t` below [`RECENT_SLOTS`], the last
/// value it made with its `r`, and a value asked for again is a clone of
/// it — no formatting, no allocation (~120 instructions with the clone's
/// reference count, against ~275 written each time, measured:
/// docs/benchmarks.md). At most [`RECENT_SLOTS`] values per thread are
/// kept.
///
/// ```
/// use diem::limiter::fields::ratelimit;
///
/// assert_eq!(ratelimit(35, 10), "\"default\";r=35;t=10");
/// assert_eq!(ratelimit(35, 10), "\"default\";r=35;t=10");
/// assert_eq!(ratelimit(34, 10), "\"default\";r=34;t=10");
/// assert_eq!(ratelimit(0, 86_400), "\"default\";r=0;t=86400");
/// ```
pub fn ratelimit(remaining: u64, reset_secs: u64) -> HeaderValue {
    thread_local! {
        static RECENT: RefCell<Vec<Option<(u64, HeaderValue)>>> = const { RefCell::new(Vec::new()) };
    }
    let slot = match usize::try_from(reset_secs) {
        Ok(slot) if slot < RECENT_SLOTS => slot,
        _ => return made(remaining, reset_secs),
    };
    RECENT.with_borrow_mut(|recent| {
        if recent.is_empty() {
            recent.resize(RECENT_SLOTS, None);
        }
        match &recent[slot] {
            Some((r, value)) if *r == remaining => value.clone(),
            _ => {
                let value = made(remaining, reset_secs);
                recent[slot] = Some((remaining, value.clone()));
                value
            }
        }
    })
}

/// The `t` values below which [`ratelimit`] keeps each thread's recent
/// values: 17 minutes, more than the reset of any usual limit.
pub const RECENT_SLOTS: usize = 1024;

/// A `RateLimit` value written (without `fmt`).
fn made(remaining: u64, reset_secs: u64) -> HeaderValue {
    let mut text = [0u8; 64];
    let mut n = 0;
    let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
    for part in [
        &b"\"default\";r="[..],
        r.format(remaining).as_bytes(),
        b";t=",
        t.format(reset_secs).as_bytes(),
    ] {
        text[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    HeaderValue::from_bytes(&text[..n]).unwrap_or_else(|_| HeaderValue::from_static("\"default\""))
}
