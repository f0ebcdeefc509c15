//! The in-memory corpus every read is served from.
//!
//! A [`Snapshot`] is immutable: the corpus actor builds a new one when the
//! sentences change and publishes it with one atomic pointer swap, so
//! readers never lock and never see a half-built corpus. Each category keeps
//! its sentences sorted by length, so a pick under any filter (categories,
//! length bounds) costs a binary search per category and no allocation, and
//! is uniform over exactly the sentences that match.
//!
//! ```
//! use diem::store::snapshot::{Filter, Snapshot, Source};
//! use diem::store::embedded;
//!
//! let snapshot = Snapshot::build(embedded::sentences(), Source::Embedded);
//! let short = Filter { max_len: 10, ..Filter::default() };
//! let mut rng = fastrand::Rng::with_seed(7);
//! let entry = snapshot.pick(&short, &mut rng).unwrap();
//! assert!(entry.length <= 10);
//! assert!(snapshot.count(&Filter { min_len: 1000, ..Filter::default() }) == 0);
//! ```

use std::collections::HashMap;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::sentence::{detail_body, js_body, json_body, plain_body, Category, Sentence, CATEGORIES};

/// Where a snapshot's sentences came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// The corpus compiled into the binary.
    Embedded,
    /// PostgreSQL, loaded at this time.
    Postgres {
        /// Seconds since the Unix epoch.
        loaded_at: u64,
    },
}

impl Source {
    /// A PostgreSQL source loaded now.
    pub fn postgres_now() -> Self {
        let loaded_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Source::Postgres { loaded_at }
    }
}

/// One servable sentence with its pre-built bodies.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The sentence's id.
    pub id: i64,
    /// The sentence's uuid.
    pub uuid: Uuid,
    /// Its category.
    pub category: Category,
    /// Its length in characters.
    pub length: u32,
    /// `hitokoto——「from」`.
    pub plain: Bytes,
    /// `{"hitokoto":…,"source":…}`, script-safe.
    pub json: Bytes,
    /// The `encode=js` script.
    pub js: Bytes,
    /// Every stored field, for `GET /hitokoto/v2/{uuid}`.
    pub detail: Bytes,
}

impl Entry {
    /// The entry for a sentence.
    pub fn new(s: &Sentence) -> Option<Self> {
        Some(Self {
            id: s.id,
            uuid: s.uuid,
            category: Category::from_key(s.category)?,
            length: u32::try_from(s.length).unwrap_or(0),
            plain: plain_body(&s.hitokoto, &s.from),
            json: json_body(&s.hitokoto, &s.from),
            js: js_body(&s.hitokoto, &s.from),
            detail: detail_body(s),
        })
    }
}

/// Which sentences a request accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Bit `i` set: category `i` accepted; 0 accepts every category.
    pub categories: u16,
    /// Shortest accepted length (inclusive).
    pub min_len: u32,
    /// Longest accepted length (inclusive).
    pub max_len: u32,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            categories: 0,
            min_len: 0,
            max_len: u32::MAX,
        }
    }
}

impl Filter {
    fn accepts(&self, category: usize) -> bool {
        self.categories == 0 || self.categories & (1 << category) != 0
    }
}

#[derive(Clone, Debug, Default)]
struct CategoryIndex {
    /// Indices into `entries`, sorted by length.
    order: Vec<u32>,
    /// `lengths[i]` is the length of `entries[order[i]]`.
    lengths: Vec<u32>,
}

impl CategoryIndex {
    fn range(&self, f: &Filter) -> std::ops::Range<usize> {
        if f.min_len == 0 && f.max_len == u32::MAX {
            return 0..self.order.len();
        }
        let lo = self.lengths.partition_point(|&l| l < f.min_len);
        let hi = self.lengths.partition_point(|&l| l <= f.max_len);
        lo..hi.max(lo)
    }
}

/// An immutable, indexed corpus.
#[derive(Debug)]
pub struct Snapshot {
    entries: Vec<Entry>,
    by_category: [CategoryIndex; CATEGORIES],
    by_uuid: HashMap<Uuid, u32>,
    source: Source,
}

impl Snapshot {
    /// Indexes `sentences` (a sentence with an unknown category is skipped).
    pub fn build(sentences: impl IntoIterator<Item = Sentence>, source: Source) -> Self {
        let entries: Vec<Entry> = sentences.into_iter().filter_map(|s| Entry::new(&s)).collect();
        Self::index(entries, source)
    }

    /// This snapshot with `added` (replacing an entry with its uuid) and
    /// without `removed`: what a node serves at once after its own write,
    /// before its reload from PostgreSQL.
    pub fn changed(&self, added: Option<&Sentence>, removed: Option<Uuid>) -> Self {
        self.with_changes(added.into_iter().cloned().collect(), removed.as_slice())
    }

    /// This snapshot with `upserts` (each replacing the entry of its uuid,
    /// if any) and without `removed`: a change PostgreSQL notified, applied
    /// without reading the rest of the table. Linear in the snapshot's size
    /// (the indexes are built again), reading nothing.
    pub fn with_changes(&self, upserts: Vec<Sentence>, removed: &[Uuid]) -> Self {
        let upserts: Vec<Entry> = upserts.iter().filter_map(Entry::new).collect();
        let gone: std::collections::HashSet<Uuid> = removed
            .iter()
            .copied()
            .chain(upserts.iter().map(|e| e.uuid))
            .collect();
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| !gone.contains(&e.uuid))
            .cloned()
            .collect();
        entries.extend(upserts);
        Self::index(entries, self.source.clone())
    }

    fn index(entries: Vec<Entry>, source: Source) -> Self {
        let mut by_category: [CategoryIndex; CATEGORIES] = Default::default();
        for (i, e) in entries.iter().enumerate() {
            by_category[e.category.index()]
                .order
                .push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        for index in &mut by_category {
            index.order.sort_by_key(|&i| entries[i as usize].length);
            index.lengths = index.order.iter().map(|&i| entries[i as usize].length).collect();
        }
        let by_uuid = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.uuid, u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        Self {
            entries,
            by_category,
            by_uuid,
            source,
        }
    }

    /// The sentence with this uuid.
    pub fn get(&self, uuid: &Uuid) -> Option<&Entry> {
        self.entries.get(*self.by_uuid.get(uuid)? as usize)
    }

    /// Where the sentences came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Number of sentences.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no sentences.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of sentences `filter` accepts.
    pub fn count(&self, filter: &Filter) -> usize {
        self.by_category
            .iter()
            .enumerate()
            .filter(|(c, _)| filter.accepts(*c))
            .map(|(_, idx)| idx.range(filter).len())
            .sum()
    }

    /// A sentence chosen uniformly among those `filter` accepts.
    pub fn pick(&self, filter: &Filter, rng: &mut fastrand::Rng) -> Option<&Entry> {
        if *filter == Filter::default() {
            return match self.entries.len() {
                0 => None,
                n => self.entries.get(rng.usize(..n)),
            };
        }
        let total = self.count(filter);
        if total == 0 {
            return None;
        }
        let mut n = rng.usize(..total);
        for (c, idx) in self.by_category.iter().enumerate() {
            if !filter.accepts(c) {
                continue;
            }
            let range = idx.range(filter);
            if n < range.len() {
                let i = idx.order[range.start + n];
                return self.entries.get(i as usize);
            }
            n -= range.len();
        }
        None
    }
}

#[cfg(test)]
mod tests;
