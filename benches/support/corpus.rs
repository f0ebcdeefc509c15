//! The benchmark corpus, for the Rust benchmarks (`#[path]`-included):
//! `$DIEM_BENCH_CORPUS` when it is set (e.g. the real hitokoto
//! sentences-bundle), else the synthetic bundle `benches/corpus.py` writes
//! (the real one's size and length distribution; same seed, same bundle).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of the bundle to benchmark with.
pub(crate) fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DIEM_BENCH_CORPUS") {
        return PathBuf::from(dir);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("diem-bench-corpus-{}", std::process::id()));
    let status = Command::new("python3")
        .arg(repo.join("benches/corpus.py"))
        .arg(&dir)
        .status()
        .expect("python3 runs benches/corpus.py");
    assert!(status.success(), "benches/corpus.py failed: {status}");
    dir
}
