//! The query string of `GET /hitokoto/v2/`.
//!
//! | parameter | meaning |
//! |---|---|
//! | `encode` | `text` (default), `json`, `js`; anything else is a 400 |
//! | `callback` | JSONP: a JavaScript identifier path (`[A-Za-z_$][A-Za-z0-9_$]*` joined by `.`, at most 128 bytes), else 400; empty means absent; not with `encode=js` |
//! | `length` | N in 2..=100: sentences shorter than N; another whole number means no restriction, anything that is not a whole number is a 400 (as the original API) |
//! | `c` | a category key `a`–`l`, repeatable; anything else is a 400 |
//! | `min_length`, `max_length` | inclusive bounds, whole numbers 0..=10000, else 400 |
//!
//! Other parameters are ignored (cache busters such as `_=…`). A repeated
//! parameter other than `c` takes its last value, and only that one is
//! checked (`encode=xml&encode=json` is `json`).
//!
//! ```
//! use diem::api::query::{parse, Encode};
//!
//! let q = parse("encode=json&c=a&c=k&length=10").unwrap();
//! assert_eq!(q.encode, Encode::Json);
//! assert_eq!(q.filter.max_len, 9);
//! assert_eq!(parse("min_length=x").unwrap_err().parameter, "min_length");
//! assert_eq!(parse("length=abc").unwrap_err().parameter, "length");
//! assert_eq!(parse("length=500").unwrap().filter.max_len, u32::MAX);
//! assert_eq!(parse("encode=xml&encode=json").unwrap().encode, Encode::Json);
//! ```

use std::borrow::Cow;

use crate::store::sentence::Category;
use crate::store::snapshot::Filter;

/// Longest accepted `min_length` / `max_length`.
pub const MAX_LENGTH_PARAM: u32 = 10_000;
/// Longest accepted `callback`.
pub const MAX_CALLBACK: usize = 128;

/// The response format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encode {
    /// `hitokoto——「source」`.
    Text,
    /// `{"hitokoto": …, "source": …}`.
    Json,
    /// A script setting the text of `.hitokoto` elements.
    Js,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HitokotoQuery {
    /// The format.
    pub encode: Encode,
    /// The JSONP callback, if any.
    pub callback: Option<String>,
    /// Which sentences qualify.
    pub filter: Filter,
}

/// A parameter that is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct ParamError {
    /// The parameter's name.
    pub parameter: &'static str,
    /// What is wrong.
    pub message: String,
}

fn err(parameter: &'static str, message: String) -> ParamError {
    ParamError { parameter, message }
}

/// Whether `name` is a JavaScript identifier path such as `cb` or `a.b_1.$c`.
pub fn is_callback(name: &str) -> bool {
    name.len() <= MAX_CALLBACK
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

fn shown(value: &str) -> String {
    let mut s: String = value.chars().take(40).collect();
    if value.chars().count() > 40 {
        s.push('…');
    }
    s
}

fn bound(parameter: &'static str, value: &str) -> Result<u32, ParamError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_LENGTH_PARAM)
        .ok_or_else(|| {
            err(
                parameter,
                format!(
                    "must be a whole number from 0 to {MAX_LENGTH_PARAM}, found `{}`",
                    shown(value)
                ),
            )
        })
}

/// `length`: a whole number (sign allowed, any size) or absent; in 2..=100
/// it restricts, anything else whole does not (as the original API).
fn length(value: &str) -> Result<u32, ParamError> {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    if value.is_empty() {
        return Ok(u32::MAX);
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "length",
            format!("must be a whole number, found `{}`", shown(value)),
        ));
    }
    Ok(match value.parse::<u32>() {
        Ok(n) if (2..=100).contains(&n) => n - 1,
        _ => u32::MAX,
    })
}

/// The `name=value` pairs of a query, decoded as
/// `application/x-www-form-urlencoded` ([`form_urlencoded::parse`]).
///
/// A query with nothing to decode — no `%` and no `+`, as nearly every
/// request's — decodes to itself, so it is split in place: the decoder's
/// scans and UTF-8 check cost ~600 instructions per request (callgrind),
/// of ~17,000. A property test checks both give the same pairs.
enum Pairs<'a> {
    /// Nothing to decode; what is left of the query. Pieces are
    /// `&`-separated, empty ones skipped, split at the first `=` (none: an
    /// empty value), as the decoder splits. By bytes (`&` and `=` are
    /// ASCII): `str::split` with a `char` pattern cost 223 instructions per
    /// request, most of what skipping the decoder saves.
    Plain(&'a str),
    /// Percent-encoded bytes or `+`: the decoder.
    Encoded(form_urlencoded::Parse<'a>),
}

impl<'a> Pairs<'a> {
    fn of(query: &'a str) -> Self {
        if query.bytes().any(|b| b == b'%' || b == b'+') {
            Pairs::Encoded(form_urlencoded::parse(query.as_bytes()))
        } else {
            Pairs::Plain(query)
        }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pairs::Plain(rest) => loop {
                if rest.is_empty() {
                    return None;
                }
                let (piece, after) = split_at_byte(rest, b'&');
                *rest = after;
                if !piece.is_empty() {
                    let (name, value) = split_at_byte(piece, b'=');
                    return Some((Cow::Borrowed(name), Cow::Borrowed(value)));
                }
            },
            Pairs::Encoded(pairs) => pairs.next(),
        }
    }
}

/// `s` before and after the first `byte` (an ASCII byte, so both sides
/// are whole characters); all of `s` and nothing when it has none.
fn split_at_byte(s: &str, byte: u8) -> (&str, &str) {
    match s.bytes().position(|b| b == byte) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Parses a query string (without the `?`). A repeated parameter other
/// than `c` takes its last value; only that value is checked.
pub fn parse(query: &str) -> Result<HitokotoQuery, ParamError> {
    let (mut encode_raw, mut callback_raw, mut length_raw) = (None, None, None);
    let (mut min_raw, mut max_raw) = (None, None);
    let mut categories: u16 = 0;
    for (key, value) in Pairs::of(query) {
        match &*key {
            "encode" => encode_raw = Some(value),
            "callback" => callback_raw = Some(value),
            "length" => length_raw = Some(value),
            "min_length" => min_raw = Some(value),
            "max_length" => max_raw = Some(value),
            "c" => match value.parse::<Category>() {
                Ok(c) => categories |= 1 << c.index(),
                Err(e) => return Err(err("c", format!("{e}, found `{}`", shown(&value)))),
            },
            _ => {}
        }
    }
    let encode = match encode_raw.as_deref().unwrap_or("") {
        "" | "text" => Encode::Text,
        "json" => Encode::Json,
        "js" => Encode::Js,
        other => {
            return Err(err(
                "encode",
                format!("must be text, json or js, found `{}`", shown(other)),
            ))
        }
    };
    let callback = match callback_raw.as_deref().unwrap_or("") {
        "" => None,
        name if is_callback(name) => Some(name.to_owned()),
        other => {
            return Err(err(
                "callback",
                format!(
                    "must be a JavaScript identifier path (letters, digits, _, $ and .), found `{}`",
                    shown(other)
                ),
            ))
        }
    };
    let length_max = length(length_raw.as_deref().unwrap_or(""))?;
    let min_len = min_raw.map_or(Ok(0), |v| bound("min_length", &v))?;
    let max_len = max_raw.map_or(Ok(u32::MAX), |v| bound("max_length", &v))?;
    if min_len > max_len {
        return Err(err(
            "min_length",
            format!("must not exceed max_length ({max_len}), found {min_len}"),
        ));
    }
    if encode == Encode::Js && callback.is_some() {
        return Err(err("callback", "cannot be combined with encode=js".to_owned()));
    }
    Ok(HitokotoQuery {
        encode,
        callback,
        filter: Filter {
            categories,
            min_len,
            max_len: max_len.min(length_max),
        },
    })
}

#[cfg(test)]
mod tests;
