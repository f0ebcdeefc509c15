//! A sentence, its category, and the bodies it is served as.
//!
//! Bodies are built once per sentence (when a snapshot is built), not per
//! request: `plain` (`hitokoto——「from」`), `json`
//! (`{"hitokoto":…,"source":…}`) and `js` (a script that sets the text of
//! every `.hitokoto` element). JSON here is *script-safe*: `<`, `>`, `&`,
//! U+2028 and U+2029 are written as `\u` escapes, so a sentence can neither
//! close a `<script>` element nor break a JavaScript string when the body is
//! used as JSONP or inside the `js` snippet.
//!
//! ```
//! use diem::store::sentence::{js_string, Category};
//!
//! assert_eq!(Category::from_key('c').unwrap().key(), 'c');
//! assert!(Category::from_key('m').is_none());
//! assert_eq!("k".parse::<Category>().unwrap().key(), 'k');
//! assert!("ab".parse::<Category>().is_err());
//! assert_eq!(js_string("</script>"), r#""\u003c/script\u003e""#);
//! ```

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Number of categories (`a` to `l`).
pub const CATEGORIES: usize = 12;

/// A sentence category, `a` (anime) to `l` (jokes), as in the
/// sentences-bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Category(u8);

impl Category {
    /// The category with this key, if it is one of `a` to `l`.
    pub fn from_key(key: char) -> Option<Self> {
        ('a'..='l').contains(&key).then(|| Self(key as u8 - b'a'))
    }

    /// Its key, `a` to `l`.
    pub fn key(self) -> char {
        char::from(b'a' + self.0)
    }

    /// Its index, 0 to 11.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Every category, in key order.
    pub fn all() -> impl Iterator<Item = Category> {
        (0..CATEGORIES as u8).map(Category)
    }
}

/// A text that is not a category key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a category key from a to l")]
pub struct NotACategory;

impl std::str::FromStr for Category {
    type Err = NotACategory;

    /// One of `a` to `l`, nothing else.
    fn from_str(s: &str) -> Result<Self, NotACategory> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Category::from_key(c).ok_or(NotACategory),
            _ => Err(NotACategory),
        }
    }
}

/// One sentence with the fields of the sentences-bundle format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    /// Numeric id (bundle ids; ids of sentences written through the API
    /// start at 1,000,000,000 so the two never collide).
    pub id: i64,
    /// Stable identity (imports upsert by it).
    pub uuid: Uuid,
    /// The text.
    pub hitokoto: String,
    /// Category key, `a` to `l`.
    #[serde(rename = "type")]
    pub category: char,
    /// Where it is from (the API's `source`).
    pub from: String,
    /// Who said it, if known.
    pub from_who: Option<String>,
    /// Who added it.
    pub creator: String,
    /// Length in characters (Unicode scalar values).
    pub length: i32,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// The length of a text as the API counts it: Unicode scalar values.
pub fn char_length(text: &str) -> i32 {
    i32::try_from(text.chars().count()).unwrap_or(i32::MAX)
}

/// `text` as a JSON string literal that is also safe inside a `<script>`
/// element and a JavaScript string.
pub fn js_string(text: &str) -> String {
    let json = serde_json::Value::String(text.to_owned()).to_string();
    script_safe(json)
}

/// `value` as script-safe JSON: every API body is, so that none can close a
/// `<script>` element or break a JavaScript string, whatever text it echoes.
/// (`<`, `>`, `&`, U+2028 and U+2029 only occur inside JSON strings, where
/// their `\u` escapes mean the same.)
pub fn script_safe_json<T: Serialize + ?Sized>(value: &T) -> String {
    script_safe(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()))
}

/// A sentence with every stored field, as `GET /hitokoto/v2/{uuid}` and a
/// `201` answer it (script-safe JSON).
pub fn detail_body(s: &Sentence) -> Bytes {
    Bytes::from(script_safe_json(s))
}

fn script_safe(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The plain-text body: `hitokoto——「from」`.
pub fn plain_body(hitokoto: &str, from: &str) -> Bytes {
    Bytes::from(format!("{hitokoto}——「{from}」"))
}

/// The JSON body: `{"hitokoto":…,"source":…}` (script-safe).
pub fn json_body(hitokoto: &str, from: &str) -> Bytes {
    Bytes::from(format!(
        "{{\"hitokoto\":{},\"source\":{}}}",
        js_string(hitokoto),
        js_string(from)
    ))
}

/// The `encode=js` body: sets the text (never HTML) of every element with
/// class `hitokoto` to the plain form.
pub fn js_body(hitokoto: &str, from: &str) -> Bytes {
    let text = js_string(&format!("{hitokoto}——「{from}」"));
    Bytes::from(format!(
        "(function(){{var t={text};var e=document.querySelectorAll('.hitokoto');\
         for(var i=0;i<e.length;i++){{e[i].textContent=t;}}}})();"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(&plain_body("a", "b")[..], "a——「b」".as_bytes());
        let json: serde_json::Value = serde_json::from_slice(&json_body("<x>&\u{2028}\"", "s")).unwrap();
        assert_eq!(json["hitokoto"], "<x>&\u{2028}\"");
        assert_eq!(json["source"], "s");
        let js = js_body("</script><script>alert(1)</script>", "x");
        let js = std::str::from_utf8(&js).unwrap();
        assert!(!js.contains("</script"), "{js}");
        assert!(js.contains("textContent"));
        let safe = script_safe_json(&serde_json::json!({"message": "</script>\u{2028}"}));
        assert!(!safe.contains('<') && !safe.contains('\u{2028}'), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["message"], "</script>\u{2028}");
    }

    #[test]
    fn length_counts_characters() {
        assert_eq!(char_length("与众不同"), 4);
        assert_eq!(char_length("ab"), 2);
    }
}
