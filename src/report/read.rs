//! Reading vidcls's own JSON Lines back (`vidcls report`): each file's records, grouped by
//! input, into the typed values the writers take; which inputs a set of files (shards of one
//! run) holds twice, which are missing from a list, and whether one model made them all.

use super::{About, Record, VideoResult};
use anyhow::{bail, Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One input's records as one file holds them (consecutive records of one path).
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecords {
    pub path: String,
    /// Which of the files read it comes from (index into [`Loaded::files`]).
    pub file: usize,
    pub records: Vec<Record>,
}

/// An input recorded again after its first group of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub path: String,
    /// The files of the first and of the repeated records (may be the same file).
    pub first: PathBuf,
    pub again: PathBuf,
}

/// What a set of JSON Lines files holds: each input once (its first records), in path order
/// (component by component, as a directory walk lists them).
#[derive(Debug, Default)]
pub struct Loaded {
    pub files: Vec<PathBuf>,
    pub inputs: Vec<InputRecords>,
    pub duplicates: Vec<Duplicate>,
    /// Torn last lines left out (a run killed mid-write), one message each.
    pub torn: Vec<String>,
    /// Each distinct model (name and label list) of the records, duplicates included, with
    /// the first file that holds it.
    models: Vec<(Model, usize)>,
}

/// What names a model in a record: its name and, when recorded, its label list's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    name: String,
    label_set: Option<String>,
}

/// Reads `files` (vidcls JSON Lines: predict, timeline, segment, error records). A line that
/// is not a record is an error naming the file and line; a torn last line (no newline, not
/// JSON, starting like a record) is left out and noted in [`Loaded::torn`].
pub fn load(files: &[PathBuf]) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        loaded.files.push(file.clone());
        let (records, torn) = read_file(file)?;
        loaded.torn.extend(torn);
        loaded.note_models(&records, i);
        for group in by_input(records) {
            let path = group[0].path().to_string();
            match seen.get(&path) {
                Some(&first) => loaded.duplicates.push(Duplicate {
                    path,
                    first: files[loaded.inputs[first].file].clone(),
                    again: file.clone(),
                }),
                None => {
                    seen.insert(path.clone(), loaded.inputs.len());
                    loaded.inputs.push(InputRecords {
                        path,
                        file: i,
                        records: group,
                    });
                }
            }
        }
    }
    loaded
        .inputs
        .sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
    Ok(loaded)
}

/// The records of one file, and a note when its torn last line was left out.
fn read_file(file: &Path) -> Result<(Vec<Record>, Option<String>)> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut records = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        if body.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(body) {
            Ok(r) => records.push(r),
            Err(e) if is_torn(line, &e) && n + 1 == lines.len() => {
                let note = format!(
                    "{} line {}: torn last line left out (a run stopped while writing it)",
                    file.display(),
                    n + 1
                );
                return Ok((records, Some(note)));
            }
            Err(e) => bail!(
                "{} line {}: not a vidcls record ({e})",
                file.display(),
                n + 1
            ),
        }
    }
    Ok((records, None))
}

/// A line cut short by a stopped writer: no newline, the start of a JSON object, ended early.
fn is_torn(line: &str, e: &serde_json::Error) -> bool {
    !line.ends_with('\n') && line.starts_with('{') && e.is_eof()
}

/// Consecutive records of one path, as a run writes each input's records together.
fn by_input(records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut groups: Vec<Vec<Record>> = Vec::new();
    for r in records {
        match groups.last_mut() {
            Some(g) if g[0].path() == r.path() => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    groups
}

impl Loaded {
    /// Puts the inputs in the order of `listed` (a run's input list); those it does not name
    /// stay after them, in path order.
    pub fn order_by(&mut self, listed: &[String]) {
        let rank: HashMap<&str, usize> = listed
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        self.inputs
            .sort_by_key(|i| rank.get(i.path.as_str()).copied().unwrap_or(usize::MAX));
    }

    fn note_models(&mut self, records: &[Record], file: usize) {
        for v in results(records) {
            let m = Model {
                name: v.model.clone(),
                label_set: v.label_set.clone(),
            };
            if !self.models.iter().any(|(seen, _)| *seen == m) {
                self.models.push((m, file));
            }
        }
    }

    /// Refuses records (all of them, repeated inputs too) of different models, or of one
    /// model name with different label lists: the error names two files and what differs.
    pub fn check_one_model(&self) -> Result<()> {
        let Some((first, file)) = self.models.first() else {
            return Ok(());
        };
        for (m, other) in &self.models[1..] {
            if let Some(what) = differs(first, m) {
                bail!(
                    "{} and {} hold records of different {what}: use --mixed to report them together",
                    self.files[*file].display(),
                    self.files[*other].display()
                );
            }
        }
        Ok(())
    }

    /// The run the records describe, for a report's heading: their models, precisions and
    /// devices (each distinct one, in order of appearance).
    pub fn about(&self) -> About {
        let all: Vec<&VideoResult> = self
            .inputs
            .iter()
            .flat_map(|i| results(&i.records))
            .collect();
        let distinct = |f: &dyn Fn(&VideoResult) -> Option<String>| {
            let mut seen = Vec::new();
            for v in &all {
                if let Some(s) = f(v).filter(|s| !seen.contains(s)) {
                    seen.push(s);
                }
            }
            seen.join(", ")
        };
        About {
            model: distinct(&|v| Some(v.model.clone())),
            precision: distinct(&|v| v.ran.as_ref().map(|r| r.precision.clone())),
            device: distinct(&|v| v.ran.as_ref().map(|r| r.device.clone())),
        }
    }

    /// What the records cover of `listed` (when a run's input list is given).
    pub fn coverage(&self, listed: Option<&[String]>) -> Coverage {
        let recorded: HashSet<&str> = self.inputs.iter().map(|i| i.path.as_str()).collect();
        let missing = listed.map_or_else(Vec::new, |l| {
            let mut once = HashSet::new();
            l.iter()
                .filter(|p| !recorded.contains(p.as_str()) && once.insert(p.as_str()))
                .cloned()
                .collect()
        });
        let unlisted = listed.map_or_else(Vec::new, |l| {
            let listed: HashSet<&str> = l.iter().map(String::as_str).collect();
            self.inputs
                .iter()
                .filter(|i| !listed.contains(i.path.as_str()))
                .map(|i| i.path.clone())
                .collect()
        });
        let failed = self
            .inputs
            .iter()
            .flat_map(|i| &i.records)
            .filter_map(|r| match r {
                Record::Err(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        Coverage {
            recorded: self.inputs.len(),
            missing,
            duplicates: self.duplicates.clone(),
            failed,
            unlisted,
        }
    }
}

/// What a set of records covers: inputs missing from it, recorded twice, or failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Distinct inputs recorded.
    pub recorded: usize,
    pub missing: Vec<String>,
    pub duplicates: Vec<Duplicate>,
    pub failed: Vec<super::FileError>,
    /// Inputs recorded that the list does not name (not counted against coverage).
    pub unlisted: Vec<String>,
}

impl Coverage {
    /// Every input recorded once, none failed.
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.duplicates.is_empty() && self.failed.is_empty()
    }
}

/// The video results among records.
fn results(records: &[Record]) -> impl Iterator<Item = &VideoResult> {
    records.iter().filter_map(|r| match r {
        Record::Ok(v) => Some(v),
        _ => None,
    })
}

/// What tells two records' models apart, if anything: the name, else the label list (when
/// both record it).
fn differs(a: &Model, b: &Model) -> Option<String> {
    if a.name != b.name {
        return Some(format!("models ({} and {})", a.name, b.name));
    }
    match (&a.label_set, &b.label_set) {
        (Some(x), Some(y)) if x != y => Some(format!(
            "label lists of model {} (label sets {x} and {y})",
            a.name
        )),
        _ => None,
    }
}

/// The paths of an input list: one a line, blank lines skipped.
pub fn input_list(file: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--inputs: cannot read {}", file.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, render, seg};
    use super::super::Format;
    use super::*;

    fn file_with(name: &str, text: &str) -> std::path::PathBuf {
        super::super::fixtures::file_with("read", name, text)
    }

    #[test]
    fn shards_merge_in_path_order_and_duplicates_are_found() {
        let a = render(
            Format::Jsonl,
            &[
                vec![ok("d/b.mp4", None)],
                vec![seg("d/a/x.mp4", 0.0, 1.0, 0.9)],
            ],
        );
        let b = render(
            Format::Jsonl,
            &[vec![err("d/a.mp4")], vec![ok("d/b.mp4", None)]],
        );
        let files = [file_with("s1.jsonl", &a), file_with("s2.jsonl", &b)];
        let loaded = load(&files).unwrap();
        let paths: Vec<&str> = loaded.inputs.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["d/a/x.mp4", "d/a.mp4", "d/b.mp4"]);
        assert_eq!(loaded.duplicates.len(), 1);
        assert_eq!(loaded.duplicates[0].again, files[1]);
        let listed = ["d/b.mp4", "d/c.mp4", "d/a.mp4"].map(String::from);
        let cov = loaded.coverage(Some(&listed));
        assert_eq!(cov.missing, ["d/c.mp4"]);
        assert_eq!(cov.unlisted, ["d/a/x.mp4"]);
        assert_eq!(cov.failed.len(), 1);
        assert!(!cov.complete());
    }

    #[test]
    fn torn_last_line_is_left_out_and_a_foreign_line_is_refused() {
        let text = render(Format::Jsonl, &[vec![ok("a.mp4", None)]]);
        let p = file_with("torn.jsonl", &format!("{text}{{\"path\":\"b.mp4\",\"mo"));
        let loaded = load(std::slice::from_ref(&p)).unwrap();
        assert_eq!(loaded.inputs.len(), 1);
        assert!(loaded.torn[0].contains("line 2"), "{:?}", loaded.torn);
        let p = file_with(
            "foreign.jsonl",
            &format!("{text}{{\"name\":\"x\"}}\n{text}"),
        );
        let e = load(std::slice::from_ref(&p)).unwrap_err().to_string();
        assert!(
            e.contains("foreign.jsonl line 2: not a vidcls record"),
            "{e}"
        );
    }

    #[test]
    fn different_models_or_label_lists_are_told_apart() {
        let with = |name: &str, set: Option<&str>| Model {
            name: name.into(),
            label_set: set.map(String::from),
        };
        assert_eq!(differs(&with("m", Some("1")), &with("m", None)), None);
        assert!(differs(&with("m", None), &with("n", None)).is_some());
        let d = differs(&with("m", Some("1")), &with("m", Some("2"))).unwrap();
        assert!(d.contains("label"), "{d}");
    }
}
