//! OTP conformance: replays every `*.sup` scenario of a directory on this
//! crate and compares the trace, line by line, with the `*.trace` that real
//! Erlang/OTP 25 printed for it.
//!
//! The scenarios and traces are in the repository, `tests/otp/` (its
//! README gives the format; `tests/otp/gen.sh` regenerates the traces with
//! real Erlang). `OTP_SCENARIOS_DIR` and `OTP_EXPECTED_DIR` point the test
//! at others (a larger set elsewhere, say).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on setup failure

#[allow(unreachable_pub, dead_code)]
mod conformance {
    pub mod runner;
    pub mod scenario;
    pub mod tracer;
}

use std::path::{Path, PathBuf};

fn dir(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/otp")
            .join(default)
    })
}

fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .header("expected (OTP 25)", "actual (supervisors)")
        .to_string()
}

/// Every scenario of `tests/otp` (or of `OTP_SCENARIOS_DIR`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_conformance() {
    check(
        &dir("OTP_SCENARIOS_DIR", "scenarios"),
        &dir("OTP_EXPECTED_DIR", "expected"),
    )
    .await;
}

async fn check(scenarios: &Path, expected: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read scenarios in {}: {e} (set OTP_SCENARIOS_DIR)",
                scenarios.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sup"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.sup scenarios in {}", scenarios.display());

    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let trace_path = expected.join(format!("{name}.trace"));
        let want = std::fs::read_to_string(&trace_path)
            .unwrap_or_else(|e| panic!("{}: {e} (set OTP_EXPECTED_DIR)", trace_path.display()));
        let run = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            conformance::runner::run(&text),
        )
        .await;
        let got = match run {
            Ok(Ok(lines)) => lines.join("\n") + "\n",
            Ok(Err(e)) => format!("runner error: {e}\n"),
            Err(_) => "runner timed out after 60 s\n".to_owned(),
        };
        if got == want {
            println!("ok   {name}");
        } else {
            println!("FAIL {name}\n{}", diff(&want, &got));
            failures.push(name);
        }
    }
    println!(
        "otp conformance: {}/{} scenarios match",
        files.len() - failures.len(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "scenarios that differ from OTP: {failures:?}"
    );
}
