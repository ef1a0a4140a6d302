//! Every measured figure in README.md and docs/*.md names its source: it sits in the scope of a
//! marker line that gives the command that printed it and the commit it ran at
//! (`<!-- figures: `COMMAND` at COMMIT -->`, `..., history -->`), or says why its numbers are
//! not measurements (`<!-- figures: none (REASON) -->`). A marker covers the lines after it up
//! to the next marker or the end of its section (the next heading of the same or a higher
//! level; before any heading, or under the page's `#` title, the rest of the page).

use crate::support::root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How many commits a figure may lag behind the newest change to the code it measures.
const MAX_LAG: u64 = 30;
/// The code whose changes make a figure stale.
const MEASURED_CODE: [&str; 3] = ["src/decode", "src/model", "src/pipeline"];

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Run {
        command: String,
        commit: String,
        history: bool,
    },
    None,
}

#[derive(Debug)]
struct Marker {
    /// 0-based index of the marker's line.
    line: usize,
    /// 0-based index of the first line after its scope.
    end: usize,
    source: Result<Source, String>,
}

/// A problem found in a page: 1-based line, the line's text, what is wrong.
#[derive(Debug, PartialEq)]
pub(crate) struct Problem {
    line: usize,
    text: String,
    why: String,
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// ATX headings outside code fences: (0-based line, level).
fn headings(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut fenced = false;
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if is_fence(line) {
            fenced = !fenced;
        } else if !fenced {
            if let Some(level) = heading_level(line) {
                found.push((i, level));
            }
        }
    }
    found
}

fn heading_level(line: &str) -> Option<usize> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && (rest.is_empty() || rest.starts_with(' '))).then_some(level)
}

/// `Some` for a marker line (parsed or not), `None` for any other line.
fn parse_marker(line: &str) -> Option<Result<Source, String>> {
    let body = line.trim().strip_prefix("<!-- figures:")?;
    let Some(body) = body.strip_suffix("-->") else {
        return Some(Err("the marker does not end with `-->` on its line".into()));
    };
    Some(parse_source(body.trim()))
}

fn parse_source(body: &str) -> Result<Source, String> {
    if let Some(rest) = body.strip_prefix("none") {
        let reason = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'));
        return match reason.map(str::trim) {
            Some(r) if !r.is_empty() => Ok(Source::None),
            _ => Err("`none` needs a reason: `none (REASON)`".into()),
        };
    }
    let (command, tail) = body
        .strip_prefix('`')
        .and_then(|b| b.rsplit_once("` at "))
        .ok_or("expected `COMMAND` at COMMIT")?;
    let (commit, history) = match tail.trim().strip_suffix(", history") {
        Some(c) => (c.trim(), true),
        None => (tail.trim(), false),
    };
    if command.trim().is_empty() {
        return Err("the command is empty".into());
    }
    if !(7..=40).contains(&commit.len()) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{commit}` is not a commit (7-40 hex digits)"));
    }
    let (command, commit) = (command.trim().to_string(), commit.to_string());
    Ok(Source::Run {
        command,
        commit,
        history,
    })
}

/// Every marker of a page with its scope.
fn markers(lines: &[&str]) -> Vec<Marker> {
    let heads = headings(lines);
    let found: Vec<(usize, Result<Source, String>)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| parse_marker(l).map(|s| (i, s)))
        .collect();
    let starts: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
    found
        .into_iter()
        .map(|(line, source)| {
            let end = scope_end(line, &heads, &starts, lines.len());
            Marker { line, end, source }
        })
        .collect()
}

/// Where the scope of the marker at `line` ends: the next marker, or the next heading whose
/// level is at most that of the section the marker is in (a page's `#` title, or no heading
/// at all, leaves only the next marker and the end of the page).
fn scope_end(line: usize, heads: &[(usize, usize)], markers: &[usize], len: usize) -> usize {
    let section = heads
        .iter()
        .rev()
        .find(|(h, _)| *h < line)
        .map_or(1, |(_, lv)| *lv);
    let next_marker = markers.iter().copied().find(|&m| m > line).unwrap_or(len);
    let next_heading = heads
        .iter()
        .find(|&&(h, lv)| h > line && lv <= section && section > 1)
        .map_or(len, |(h, _)| *h);
    next_marker.min(next_heading)
}

/// Units after a number, optionally after one space. `x` and `×` count only directly attached.
const UNITS: [&str; 15] = [
    "clips/s", "videos/s", "fps", "min", "ms", "MiB", "MB", "GiB", "GB", "KiB", "KB", "kB", "s",
    "h", "%",
];

/// Whether a line holds a measured-looking token: a number and a unit (`29 s`, `86.7%`,
/// `4.5x`, `3.59 clips/s`, `126 MB`). `x` counts only directly after the number and not
/// before another letter or digit, so `8192 x 8192` and `128x171` are dimensions, not figures.
fn has_figure(line: &str) -> bool {
    let b = line.as_bytes();
    (0..b.len()).any(|i| number_at(b, i).is_some_and(|end| unit_at(line, end)))
}

/// The end of a number starting at `i` (digits, `1,083`-style groups, decimals), if one
/// starts there: not inside a word, a hash or a version (`x264`, `H.264`, `v669`).
fn number_at(b: &[u8], i: usize) -> Option<usize> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
    if !b[i].is_ascii_digit() || (i > 0 && word(b[i - 1])) {
        return None;
    }
    let digits = |from: usize| from + b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut end = digits(i);
    while b.get(end) == Some(&b',') && digits(end + 1) == end + 4 {
        end += 4;
    }
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits(end + 1);
    }
    Some(end)
}

fn unit_at(line: &str, end: usize) -> bool {
    let rest = &line[end..];
    let bounded = |s: &str, u: &str| {
        s.strip_prefix(u)
            .is_some_and(|t| !t.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    if bounded(rest, "x") || bounded(rest, "×") {
        return true;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    UNITS.iter().any(|u| bounded(rest, u))
}

/// Figure lines outside every marker's scope, and markers that do not parse.
pub(crate) fn unsourced(text: &str) -> Vec<Problem> {
    let lines: Vec<&str> = text.lines().collect();
    let marks = markers(&lines);
    let problem = |i: usize, why: &str| Problem {
        line: i + 1,
        text: lines[i].to_string(),
        why: why.to_string(),
    };
    let mut out: Vec<Problem> = marks
        .iter()
        .filter_map(|m| m.source.as_ref().err().map(|e| problem(m.line, e)))
        .collect();
    let covered = |i: usize| marks.iter().any(|m| m.line < i && i < m.end);
    for (i, line) in lines.iter().enumerate() {
        if parse_marker(line).is_none() && has_figure(line) && !covered(i) {
            out.push(problem(
                i,
                "a figure with no `<!-- figures: ... -->` marker above it",
            ));
        }
    }
    out.sort_by_key(|p| p.line);
    out
}

/// README.md and every docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("read docs/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages.insert(0, root().join("README.md"));
    pages
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn report(problems: &[(String, Problem)]) -> String {
    problems
        .iter()
        .map(|(page, p)| format!("{page}:{}: {}\n    {}", p.line, p.why, p.text.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn read(page: &Path) -> String {
    std::fs::read_to_string(page).unwrap_or_else(|e| panic!("read {}: {e}", page.display()))
}

#[test]
fn every_figure_has_a_source() {
    let problems: Vec<(String, Problem)> = pages()
        .iter()
        .flat_map(|page| unsourced(&read(page)).into_iter().map(|p| (rel(page), p)))
        .collect();
    assert!(
        problems.is_empty(),
        "{} figure line(s) or marker(s) without a source:\n{}",
        problems.len(),
        report(&problems)
    );
}

fn git(args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("figures_are_fresh needs git (a full clone): git: {e}"))
}

pub(crate) fn git_text(args: &[&str]) -> String {
    let out = git(args);
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Why the figures of `commit` are not fresh against `latest` (the newest commit to the
/// measured code), or `None` when they are.
fn staleness(commit: &str, latest: &str) -> Option<String> {
    if !git(&["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status
        .success()
    {
        return Some(format!("unknown commit {commit}"));
    }
    if !git(&["merge-base", "--is-ancestor", commit, latest])
        .status
        .success()
    {
        return None;
    }
    let lag: u64 = git_text(&["rev-list", "--count", &format!("{commit}..{latest}")])
        .parse()
        .expect("rev-list --count prints a number");
    (lag > MAX_LAG).then(|| {
        format!(
            "stale: {commit} is {lag} commits before {latest:.7}, the newest change to {}",
            MEASURED_CODE.join(", ")
        )
    })
}

/// Marker lines whose commit is unknown or stale (history markers are exempt).
fn stale_markers(text: &str, latest: &str) -> Vec<Problem> {
    let lines: Vec<&str> = text.lines().collect();
    markers(&lines)
        .into_iter()
        .filter_map(|m| match m.source {
            Ok(Source::Run {
                commit,
                history: false,
                ..
            }) => staleness(&commit, latest).map(|why| Problem {
                line: m.line + 1,
                text: lines[m.line].to_string(),
                why,
            }),
            _ => None,
        })
        .collect()
}

#[test]
fn figures_are_fresh() {
    let repo = git(&["rev-parse", "--git-dir"]);
    assert!(
        repo.status.success(),
        "figures_are_fresh needs a git repository with its history (a full clone): {}",
        String::from_utf8_lossy(&repo.stderr)
    );
    let mut args = vec!["log", "-1", "--format=%H", "--"];
    args.extend(MEASURED_CODE);
    let latest = git_text(&args);
    assert!(
        !latest.is_empty(),
        "no commit touches {} (a shallow clone?)",
        MEASURED_CODE.join(", ")
    );
    let problems: Vec<(String, Problem)> = pages()
        .iter()
        .flat_map(|page| {
            stale_markers(&read(page), &latest)
                .into_iter()
                .map(|p| (rel(page), p))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} figure block(s) to measure again:\n{}",
        problems.len(),
        report(&problems)
    );
}

const PAGE: &str = "# Title\n\nIntro.\n\n## Speed\n\n<!-- figures: `scripts/bench.sh` at 0123abc -->\nIt took 29 s and scored 86.7%.\n\n### Detail\n\nStill 4.5x faster.\n\n## Other\n\nNothing measured.\n";

fn without_line(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| !l.contains(needle))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn a_marked_page_passes() {
    assert_eq!(unsourced(PAGE), vec![]);
}

#[test]
fn the_same_page_without_its_marker_fails() {
    let lines: Vec<usize> = unsourced(&without_line(PAGE, "<!-- figures"))
        .iter()
        .map(|p| p.line)
        .collect();
    assert_eq!(
        lines,
        vec![7, 11],
        "both figure lines, in the page without the marker"
    );
}

#[test]
fn none_needs_a_reason() {
    for bad in ["none ()", "none (  )", "none", "none reason"] {
        let page = format!("<!-- figures: {bad} -->\nA limit of 64 MiB.\n");
        let problems = unsourced(&page);
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert!(problems[0].why.contains("reason"), "{bad}: {problems:?}");
    }
    assert_eq!(
        unsourced("<!-- figures: none (a limit) -->\nA limit of 64 MiB.\n"),
        vec![]
    );
}

#[test]
fn a_marker_needs_a_command_and_a_commit() {
    for bad in [
        "`` at 0123abc",
        "`scripts/bench.sh` at 0123",
        "`scripts/bench.sh`",
        "scripts/bench.sh at 0123abc",
    ] {
        let page = format!("<!-- figures: {bad} -->\nIt took 3 s.\n");
        assert_eq!(unsourced(&page).len(), 1, "{bad}");
    }
    let history = parse_marker("<!-- figures: `a b` at 0123abc, history -->");
    let expected = Source::Run {
        command: "a b".into(),
        commit: "0123abc".into(),
        history: true,
    };
    assert_eq!(history, Some(Ok(expected)));
}

#[test]
fn scope_ends_at_the_next_heading_of_the_same_level() {
    let page =
        "# T\n## A\n<!-- figures: none (settings) -->\n10 fps\n### A.1\n20 fps\n## B\n30 fps\n";
    let lines: Vec<usize> = unsourced(page).iter().map(|p| p.line).collect();
    assert_eq!(
        lines,
        vec![8],
        "the sub-section is covered, the next section is not"
    );
}

#[test]
fn a_marker_under_the_title_covers_the_page_up_to_the_next_marker() {
    let page = "# T\n<!-- figures: none (settings) -->\n10 fps\n## A\n20 fps\n### B\n30 fps\n";
    assert_eq!(unsourced(page), vec![], "every section of the page");
    let page = "# T\n<!-- figures: none (settings) -->\n10 fps\n## A\n<!-- figures: none (x) -->\n## B\n30 fps\n";
    assert_eq!(
        unsourced(page).iter().map(|p| p.line).collect::<Vec<_>>(),
        vec![7]
    );
}

#[test]
fn headings_in_code_fences_are_not_headings() {
    let lines = ["## A", "```sh", "# a comment", "```", "### B"];
    assert_eq!(headings(&lines), vec![(0, 2), (4, 3)]);
}

#[test]
fn figures_and_non_figures() {
    for yes in [
        "4.5x",
        "took 29 s",
        "86.7%",
        "70 %",
        "3.59 clips/s",
        "1,083 s",
        "126 MB",
        "2.06×",
        "4.6 min",
        "24.35 videos/s",
        "(13%)",
        "13.6-16.1 s",
    ] {
        assert!(has_figure(yes), "{yes}");
    }
    for no in [
        "8192 x 8192",
        "128x171 -> 112",
        "x264",
        "H.264",
        "10 seconds",
        "a 2x7x7 pool",
        "commit 85e67b6",
        "1 x 3 x 3",
        "8192 × 8192",
        "\\x1b",
    ] {
        assert!(!has_figure(no), "{no}");
    }
}
