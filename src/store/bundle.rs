//! Reading a sentences-bundle directory (the format of
//! `hitokoto-osc/sentences-bundle`): `version.json` lists the category
//! files, each `sentences/<key>.json` is an array of sentences.
//!
//! Everything is read and checked before anything is written: the first
//! problem is returned as a [`BundleError`] naming the file and the
//! position (line and column for syntax and type errors, the entry number
//! and id for invalid values).
//!
//! ```
//! use diem::store::bundle::parse_entries;
//!
//! let good = r#"[{"id":1,"uuid":"9818ecda-9cbf-4f2a-9af8-8136ef39cfcd","hitokoto":"hi",
//!   "type":"a","from":"x","from_who":null,"creator":"me","created_at":"1468605909","length":2}]"#;
//! assert_eq!(parse_entries(good, "a.json", Some('a')).unwrap().len(), 1);
//! let bad = good.replace("\"type\":\"a\"", "\"type\":\"z\"");
//! let err = parse_entries(&bad, "a.json", Some('a')).unwrap_err();
//! assert_eq!(err.to_string(), "a.json: entry 1 (id 1): `type` must be one of a to l, found `z`");
//! ```

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;
use uuid::Uuid;

use crate::store::sentence::{char_length, Category, Sentence};

/// Longest accepted sentence, in characters.
pub const MAX_SENTENCE_CHARS: usize = 10_000;

/// A bundle that cannot be imported: which file, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {position}{message}")]
pub struct BundleError {
    /// The file, relative to the bundle directory.
    pub file: String,
    /// `line L column C: `, `entry N (id I): `, or empty.
    pub position: String,
    /// What is wrong.
    pub message: String,
}

impl BundleError {
    fn new(file: &str, position: String, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            position,
            message: message.into(),
        }
    }
}

/// A whole bundle, checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// `bundle_version` from version.json, if present.
    pub version: Option<String>,
    /// Every sentence, in file order.
    pub sentences: Vec<Sentence>,
    /// Number of category files read.
    pub files: usize,
}

#[derive(Deserialize)]
struct VersionFile {
    bundle_version: Option<String>,
    categories: Option<PathEntry>,
    sentences: Vec<SentenceFile>,
}

#[derive(Deserialize)]
struct PathEntry {
    path: String,
}

#[derive(Deserialize)]
struct SentenceFile {
    key: String,
    path: String,
}

#[derive(Deserialize)]
struct RawEntry {
    id: i64,
    uuid: String,
    hitokoto: String,
    #[serde(rename = "type")]
    category: String,
    from: String,
    from_who: Option<String>,
    creator: String,
    created_at: Timestamp,
    #[allow(dead_code)]
    length: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Number(i64),
    Text(String),
}

fn syntax_error(file: &str, e: &serde_json::Error) -> BundleError {
    let message = e.to_string();
    // serde_json appends " at line L column C"; put the position first.
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    BundleError::new(
        file,
        format!("line {} column {}: ", e.line(), e.column()),
        message,
    )
}

/// Parses and checks one category file. `expected` is the category the
/// file holds, if known (every entry must then have it).
pub fn parse_entries(text: &str, file: &str, expected: Option<char>) -> Result<Vec<Sentence>, BundleError> {
    let raw: Vec<RawEntry> = serde_json::from_str(text).map_err(|e| syntax_error(file, &e))?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| check_entry(r, file, i + 1, expected))
        .collect()
}

fn check_entry(r: RawEntry, file: &str, n: usize, expected: Option<char>) -> Result<Sentence, BundleError> {
    let at = || format!("entry {n} (id {}): ", r.id);
    let bad = |message: String| Err(BundleError::new(file, at(), message));
    let Ok(uuid) = Uuid::parse_str(&r.uuid) else {
        return bad(format!("`uuid` is not a UUID: `{}`", r.uuid));
    };
    let Ok(category) = r.category.parse::<Category>().map(Category::key) else {
        return bad(format!("`type` must be one of a to l, found `{}`", r.category));
    };
    if let Some(want) = expected {
        if category != want {
            return bad(format!("`type` is `{category}` in the file of category `{want}`"));
        }
    }
    if r.hitokoto.trim().is_empty() {
        return bad("`hitokoto` is empty".to_owned());
    }
    if r.hitokoto.chars().count() > MAX_SENTENCE_CHARS {
        return bad(format!(
            "`hitokoto` is longer than {MAX_SENTENCE_CHARS} characters"
        ));
    }
    if r.id <= 0 {
        return bad(format!("`id` must be positive, found {}", r.id));
    }
    let created_at = match &r.created_at {
        Timestamp::Number(n) => *n,
        Timestamp::Text(s) => match s.trim().parse::<i64>() {
            Ok(n) => n,
            Err(_) => return bad(format!("`created_at` is not a Unix time: `{s}`")),
        },
    };
    Ok(Sentence {
        id: r.id,
        uuid,
        length: char_length(&r.hitokoto),
        hitokoto: r.hitokoto,
        category,
        from: r.from,
        from_who: r.from_who,
        creator: r.creator,
        created_at,
    })
}

/// A path from version.json, kept inside the bundle directory.
fn inside(dir: &Path, rel: &str, file: &str) -> Result<PathBuf, BundleError> {
    let p = Path::new(rel);
    let escapes = p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir));
    if escapes {
        return Err(BundleError::new(
            file,
            String::new(),
            format!("path `{rel}` leaves the bundle directory"),
        ));
    }
    Ok(dir.join(p))
}

fn read(dir: &Path, rel: &str, from: &str) -> Result<String, BundleError> {
    let path = inside(dir, rel, from)?;
    std::fs::read_to_string(&path)
        .map_err(|e| BundleError::new(rel, String::new(), format!("cannot read: {e}")))
}

/// Reads and checks a whole bundle directory. `progress` is called after
/// each category file with the number of sentences read so far.
pub fn read_bundle(dir: &Path, mut progress: impl FnMut(usize)) -> Result<Bundle, BundleError> {
    let version_text = read(dir, "version.json", "version.json")?;
    let version: VersionFile =
        serde_json::from_str(&version_text).map_err(|e| syntax_error("version.json", &e))?;
    if let Some(categories) = &version.categories {
        let text = read(dir, &categories.path, "version.json")?;
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| syntax_error(&categories.path, &e))?;
    }
    let mut sentences = Vec::new();
    let mut seen = HashSet::new();
    for f in &version.sentences {
        let Ok(key) = f.key.parse::<Category>().map(Category::key) else {
            return Err(BundleError::new(
                "version.json",
                String::new(),
                format!("category key `{}` must be one of a to l", f.key),
            ));
        };
        let text = read(dir, &f.path, "version.json")?;
        let name = f.path.trim_start_matches("./");
        let entries = parse_entries(&text, name, Some(key))?;
        for (i, s) in entries.iter().enumerate() {
            if !seen.insert(s.uuid) {
                return Err(BundleError::new(
                    name,
                    format!("entry {} (id {}): ", i + 1, s.id),
                    format!("uuid {} appears twice in the bundle", s.uuid),
                ));
            }
        }
        sentences.extend(entries);
        progress(sentences.len());
    }
    Ok(Bundle {
        version: version.bundle_version,
        sentences,
        files: version.sentences.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = parse_entries("[{\"id\": 1,\n \"uuid\": }]", "a.json", None).unwrap_err();
        assert_eq!(e.file, "a.json");
        assert_eq!(e.position, "line 2 column 10: ");
        let e = parse_entries("[{\"id\": \"one\"}]", "a.json", None).unwrap_err();
        assert!(e.position.starts_with("line 1"), "{e}");
    }

    #[test]
    fn paths_stay_inside() {
        assert!(inside(Path::new("/b"), "../etc/passwd", "version.json").is_err());
        assert!(inside(Path::new("/b"), "/etc/passwd", "version.json").is_err());
        assert!(inside(Path::new("/b"), "./sentences/a.json", "version.json").is_ok());
    }
}
