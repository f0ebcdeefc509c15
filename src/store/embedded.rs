//! The corpus compiled into the binary: about a hundred public-domain
//! proverbs, classical Chinese sayings and poems, and lines of literature,
//! each with its source. diem serves it until a PostgreSQL corpus has been
//! loaded, so that a node with no database still answers.
//!
//! ```
//! let sentences = diem::store::embedded::sentences();
//! assert!(sentences.len() >= 100);
//! assert!(sentences.iter().all(|s| !s.from.is_empty()));
//! ```

use crate::store::bundle::parse_entries;
use crate::store::sentence::Sentence;

const CORPUS: &str = include_str!("embedded.json");

/// The embedded sentences (in the sentences-bundle entry format).
pub fn sentences() -> Vec<Sentence> {
    // The file is checked by a test; a mistake in it must not stop a node.
    parse_entries(CORPUS, "embedded.json", None).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the embedded corpus is invalid");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_corpus_is_valid() {
        let parsed = super::parse_entries(super::CORPUS, "embedded.json", None).unwrap();
        assert!(parsed.len() >= 100, "{}", parsed.len());
    }
}
