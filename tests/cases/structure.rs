//! The structure of the code: no import cycle between files.
//!
//! Each actor publishes what others read in a module of its own that
//! imports nothing of the actor, so `Node` sits below every actor and no
//! two files import each other, directly or around a circle. The check is
//! `../shared/tools/rust-import-cycles.py` (beside the repository, in CI
//! too); docs/architecture.md shows how to run it by hand.

use std::path::Path;
use std::process::Command;

#[test]
fn no_file_level_import_cycle() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = repo.join("../shared/tools/rust-import-cycles.py");
    assert!(
        tool.is_file(),
        "{} is missing: the checkout needs ../shared beside it (as CI has)",
        tool.display()
    );
    let out = Command::new("python3")
        .arg(&tool)
        .arg(repo)
        .output()
        .expect("python3 runs the cycle check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("import cycles: 0")),
        "file-level import cycles:\n{text}"
    );
}
