//! `scripts/bench.sh run --quick`: the benchmark harness runs end to end on a tiny corpus, and
//! every page it writes names the command and the commit that made it (the check
//! tests/docs.rs runs on README.md and docs/).

use crate::docs::{git_text, unsourced};
use crate::support::{root, run_ok, scratch};
use std::path::Path;
use std::process::Command;

/// The pages a run of every section writes.
const PAGES: [&str; 4] = [
    "BENCHMARKS.md",
    "TRAINING-BENCH.md",
    "report-scale.md",
    "EMBED-BENCH.md",
];

fn head_commit() -> (String, bool) {
    let commit = git_text(&["rev-parse", "--short=7", "HEAD"]);
    let dirty = !git_text(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    (commit, dirty)
}

/// The page's text with `+dirty` taken off its marker when the tree is dirty (a run on a
/// working copy says so; the figure check wants a commit).
fn page(dir: &Path, name: &str, dirty: bool) -> String {
    let text = std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("the quick run wrote no {name}: {e}"));
    if dirty {
        text.replace("+dirty -->", " -->")
    } else {
        text
    }
}

#[test]
fn quick_bench_writes_every_page_with_its_source() {
    let out = scratch("bench-quick");
    run_ok(
        Command::new(root().join("scripts/bench.sh"))
            .args(["run", "--quick", "--out-dir"])
            .arg(&out)
            .env("BENCH_NO_BUILD", "1")
            .current_dir(root()),
    );
    let (commit, dirty) = head_commit();
    for name in PAGES {
        let text = page(&out, name, dirty);
        let marker = format!("` at {commit} -->");
        assert!(
            text.lines()
                .take(3)
                .any(|l| l.starts_with("<!-- figures: `scripts/bench.sh") && l.ends_with(&marker)),
            "{name} does not name bench.sh and {commit} at its top:\n{}",
            text.lines().take(3).collect::<Vec<_>>().join("\n")
        );
        let problems = unsourced(&text);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}
