//! The query string of `GET /hitokoto/v2/`.
//!
//! | parameter | meaning |
//! |---|---|
//! | `encode` | `text` (default), `json`, `js`; anything else is a 400 |
//! | `callback` | JSONP: a JavaScript identifier path (`[A-Za-z_$][A-Za-z0-9_$]*` joined by `.`, at most 128 bytes), else 400; empty means absent; not with `encode=js` |
//! | `length` | N in 2..=100: sentences shorter than N; any other value is ignored (as the original API did) |
//! | `c` | a category key `a`–`l`, repeatable; anything else is a 400 |
//! | `min_length`, `max_length` | inclusive bounds, whole numbers 0..=10000, else 400 |
//!
//! Other parameters are ignored (cache busters such as `_=…`). A repeated
//! parameter other than `c` takes its last value.
//!
//! ```
//! use diem::api::query::{parse, Encode};
//!
//! let q = parse("encode=json&c=a&c=k&length=10").unwrap();
//! assert_eq!(q.encode, Encode::Json);
//! assert_eq!(q.filter.max_len, 9);
//! assert_eq!(parse("min_length=x").unwrap_err().parameter, "min_length");
//! assert_eq!(parse("length=abc").unwrap().filter.max_len, u32::MAX);
//! ```

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

/// Parses a query string (without the `?`).
pub fn parse(query: &str) -> Result<HitokotoQuery, ParamError> {
    let mut encode = Encode::Text;
    let mut callback = None;
    let mut length_max = u32::MAX;
    let mut min_len = 0;
    let mut max_len = u32::MAX;
    let mut categories: u16 = 0;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "encode" => {
                encode = match &*value {
                    "" | "text" => Encode::Text,
                    "json" => Encode::Json,
                    "js" => Encode::Js,
                    other => {
                        return Err(err(
                            "encode",
                            format!("must be text, json or js, found `{}`", shown(other)),
                        ))
                    }
                }
            }
            "callback" => {
                callback = match &*value {
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
                }
            }
            "length" => {
                if let Ok(n) = value.parse::<u32>() {
                    if (2..=100).contains(&n) {
                        length_max = n - 1;
                    }
                }
            }
            "c" => match value.parse::<Category>() {
                Ok(c) => categories |= 1 << c.index(),
                Err(e) => return Err(err("c", format!("{e}, found `{}`", shown(&value)))),
            },
            "min_length" => min_len = bound("min_length", &value)?,
            "max_length" => max_len = bound("max_length", &value)?,
            _ => {}
        }
    }
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
mod tests {
    use super::*;

    #[test]
    fn callbacks() {
        for ok in ["cb", "a.b", "$", "_x1", "jQuery123_456.done"] {
            assert!(is_callback(ok), "{ok}");
        }
        for bad in ["", "1a", "a..b", "a.", "alert(1)", "a b", "a-b", "x;y", "é"] {
            assert!(!is_callback(bad), "{bad}");
        }
        assert!(!is_callback(&"a".repeat(MAX_CALLBACK + 1)));
    }

    #[test]
    fn length_follows_the_original() {
        assert_eq!(parse("length=2").unwrap().filter.max_len, 1);
        assert_eq!(parse("length=100").unwrap().filter.max_len, 99);
        for ignored in ["1", "101", "-5", "", "x", "9999999999999"] {
            assert_eq!(
                parse(&format!("length={ignored}")).unwrap().filter.max_len,
                u32::MAX
            );
        }
        assert_eq!(parse("length=10&max_length=5").unwrap().filter.max_len, 5);
    }

    #[test]
    fn errors_name_the_parameter() {
        assert_eq!(parse("encode=xml").unwrap_err().parameter, "encode");
        assert_eq!(parse("callback=alert(1)").unwrap_err().parameter, "callback");
        assert_eq!(parse("c=z").unwrap_err().parameter, "c");
        assert_eq!(parse("c=ab").unwrap_err().parameter, "c");
        assert_eq!(parse("max_length=-1").unwrap_err().parameter, "max_length");
        assert_eq!(
            parse("min_length=5&max_length=4").unwrap_err().parameter,
            "min_length"
        );
        assert_eq!(parse("encode=js&callback=cb").unwrap_err().parameter, "callback");
    }

    #[test]
    fn categories_accumulate() {
        let q = parse("c=a&c=l").unwrap();
        assert_eq!(q.filter.categories, 1 | (1 << 11));
    }
}
