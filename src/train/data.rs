//! The training data: a folder with one subfolder per class, or a CSV manifest; a
//! deterministic stratified split; the checks that stop a run before it starts.

use crate::inputs::{self, fnv1a, Input};
use crate::model::config::check_label;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub path: PathBuf,
    pub label: usize,
    /// From the manifest; `None` until [`split`] decides.
    pub split: Option<Split>,
}

/// A file that will not be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub labels: Vec<String>,
    pub examples: Vec<Example>,
    pub skipped: Vec<Skipped>,
}

/// DATA/<label>/**/<video>: labels are the subfolder names, in name order.
pub fn from_folder(root: &Path) -> Result<Dataset> {
    if !root.is_dir() {
        bail!("{}: not a folder of class folders", root.display());
    }
    let mut classes: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("cannot read {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    let mut ds = Dataset {
        labels: Vec::new(),
        examples: Vec::new(),
        skipped: Vec::new(),
    };
    for dir in classes {
        let label = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if label.starts_with('.') {
            continue;
        }
        check_label(&label).with_context(|| format!("{}: class folder name", root.display()))?;
        let idx = ds.labels.len();
        ds.labels.push(label);
        for input in inputs::expand(std::slice::from_ref(&dir), false, &mut std::io::empty()) {
            match input {
                Input::Video(path) => ds.examples.push(Example {
                    path,
                    label: idx,
                    split: None,
                }),
                Input::Unlistable { path, error } => ds.skipped.push(Skipped {
                    path: path.to_string_lossy().into_owned(),
                    reason: error,
                }),
            }
        }
    }
    Ok(ds)
}

/// A CSV with the columns `path,label` and optionally `split` (train, val or test); relative
/// paths are relative to the manifest's folder. Labels are sorted by name.
pub fn from_manifest(file: &Path) -> Result<Dataset> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut r = ::csv::Reader::from_path(file)
        .with_context(|| format!("cannot read manifest {}", file.display()))?;
    let headers = r.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(pc), Some(lc)) = (col("path"), col("label")) else {
        bail!(
            "{}: needs the columns path,label (and optionally split)",
            file.display()
        );
    };
    let sc = col("split");
    let mut rows = Vec::new();
    for (n, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("{} row {}", file.display(), n + 2))?;
        let field = |c: usize| row.get(c).unwrap_or("").trim().to_string();
        let split = match sc.map(field).as_deref() {
            None | Some("") => None,
            Some("train") => Some(Split::Train),
            Some("val") => Some(Split::Val),
            Some("test") => Some(Split::Test),
            Some(other) => bail!(
                "{} row {}: split {other:?}: use train, val or test",
                file.display(),
                n + 2
            ),
        };
        let (path, label) = (field(pc), field(lc));
        if path.is_empty() || label.is_empty() {
            bail!("{} row {}: empty path or label", file.display(), n + 2);
        }
        check_label(&label).with_context(|| format!("{} row {}: label", file.display(), n + 2))?;
        rows.push((base.join(path), label, split));
    }
    let labels: Vec<String> = rows
        .iter()
        .map(|r| r.1.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let examples = rows
        .into_iter()
        .map(|(path, label, split)| Example {
            path,
            label: labels.iter().position(|l| *l == label).expect("listed"),
            split,
        })
        .collect();
    Ok(Dataset {
        labels,
        examples,
        skipped: Vec::new(),
    })
}

/// Fewest usable clips a class needs.
pub const MIN_PER_CLASS: usize = 4;

/// Checks what makes training meaningless: no data, one class, classes with too few clips.
pub fn check(ds: &Dataset, usable: &[usize]) -> Result<()> {
    if ds.examples.is_empty() {
        bail!("no videos found (expected DATA/<label>/<videos> or a manifest)");
    }
    if ds.labels.len() < 2 {
        bail!(
            "only one class ({}): training needs at least two",
            ds.labels.first().map_or("", String::as_str)
        );
    }
    let thin: Vec<String> = ds
        .labels
        .iter()
        .zip(usable)
        .filter(|(_, &n)| n < MIN_PER_CLASS)
        .map(|(l, n)| format!("{l} ({n})"))
        .collect();
    if !thin.is_empty() {
        bail!(
            "too few usable videos in class(es) {}: each needs at least {MIN_PER_CLASS}",
            thin.join(", ")
        );
    }
    Ok(())
}

/// Counts of examples per label.
pub fn per_class(labels: usize, examples: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut n = vec![0; labels];
    for l in examples {
        n[l] += 1;
    }
    n
}

/// A small deterministic generator (SplitMix64): shuffles and augmentation draw from it, so a
/// run is repeatable from its seed whatever the thread timing.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: &[u64]) -> Rng {
        let mut r = Rng(seed ^ 0x5851_f42d_4c95_7f2d);
        for s in stream {
            r.0 ^= s.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            r.next_u64();
        }
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Assigns a split to every example without one: per class (in path order, shuffled by the
/// seed), `val_fraction` of them go to validation, at least one while the class keeps two for
/// training. Manifest splits are kept.
pub fn split(ds: &mut Dataset, val_fraction: f64, seed: u64) {
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, e) in ds.examples.iter().enumerate() {
        if e.split.is_none() {
            by_class.entry(e.label).or_default().push(i);
        }
    }
    for (label, mut idx) in by_class {
        idx.sort_by(|&a, &b| ds.examples[a].path.cmp(&ds.examples[b].path));
        Rng::new(seed, &[label as u64, 0xda7a]).shuffle(&mut idx);
        let n = idx.len();
        let want = (n as f64 * val_fraction).round() as usize;
        let val = if val_fraction > 0.0 && n >= 3 {
            want.clamp(1, n - 2)
        } else {
            0
        };
        for (k, i) in idx.into_iter().enumerate() {
            ds.examples[i].split = Some(if k < val { Split::Val } else { Split::Train });
        }
    }
}

/// A fingerprint of the data: every example's label, path relative to `root`, size and split.
pub fn fingerprint(ds: &Dataset, root: &Path) -> String {
    let mut lines: Vec<String> = ds
        .examples
        .iter()
        .map(|e| {
            let rel = e.path.strip_prefix(root).unwrap_or(&e.path);
            let size = std::fs::metadata(&e.path).map_or(0, |m| m.len());
            format!(
                "{}\t{}\t{size}\t{:?}",
                ds.labels[e.label],
                rel.display(),
                e.split
            )
        })
        .collect();
    lines.sort();
    let text = lines.join("\n");
    format!(
        "{:016x}{:016x}",
        fnv1a(text.as_bytes(), 0),
        fnv1a(text.as_bytes(), 0x1234_5678)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(counts: &[usize]) -> Dataset {
        let mut examples = Vec::new();
        for (label, &n) in counts.iter().enumerate() {
            for i in 0..n {
                examples.push(Example {
                    path: PathBuf::from(format!("c{label}/{i:03}.mp4")),
                    label,
                    split: None,
                });
            }
        }
        Dataset {
            labels: (0..counts.len()).map(|i| format!("c{i}")).collect(),
            examples,
            skipped: Vec::new(),
        }
    }

    fn val_counts(d: &Dataset) -> Vec<usize> {
        per_class(
            d.labels.len(),
            d.examples
                .iter()
                .filter(|e| e.split == Some(Split::Val))
                .map(|e| e.label),
        )
    }

    #[test]
    fn split_is_stratified_and_repeatable() {
        let mut a = ds(&[20, 10, 3]);
        split(&mut a, 0.2, 7);
        assert_eq!(val_counts(&a), [4, 2, 1]);
        let mut b = ds(&[20, 10, 3]);
        split(&mut b, 0.2, 7);
        assert_eq!(a.examples, b.examples);
        let mut c = ds(&[20, 10, 3]);
        split(&mut c, 0.2, 8);
        assert_ne!(a.examples, c.examples, "another seed, another split");
        let mut none = ds(&[5, 5]);
        split(&mut none, 0.0, 1);
        assert_eq!(val_counts(&none), [0, 0]);
    }

    #[test]
    fn checks_refuse_what_cannot_train() {
        assert!(check(&ds(&[]), &[]).is_err());
        assert!(check(&ds(&[10]), &[10])
            .unwrap_err()
            .to_string()
            .contains("one class"));
        let e = check(&ds(&[10, 2]), &[10, 2]).unwrap_err().to_string();
        assert!(e.contains("c1 (2)"), "{e}");
        assert!(check(&ds(&[10, 10]), &[10, 9]).is_ok());
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut r = Rng::new(3, &[1, 2]);
        let a: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        let mut r = Rng::new(3, &[1, 2]);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut r = Rng::new(3, &[1, 3]);
        assert_ne!(a[0], r.next_u64());
        let mut r = Rng::new(0, &[]);
        let mut hist = [0usize; 4];
        for _ in 0..4000 {
            hist[r.below(4)] += 1;
        }
        assert!(hist.iter().all(|&h| h > 900), "{hist:?}");
    }

    #[test]
    fn labels_with_control_characters_are_refused() {
        let dir = std::env::temp_dir().join(format!("vidcls-labels-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("walk\nrun")).unwrap();
        let e = format!("{:#}", from_folder(&dir).unwrap_err());
        assert!(e.contains("class folder name: \"walk\\nrun\" holds"), "{e}");
        let manifest = dir.join("m.csv");
        std::fs::write(&manifest, "path,label\na.mp4,ok\nb.mp4,\"x\ry\"\n").unwrap();
        let e = format!("{:#}", from_manifest(&manifest).unwrap_err());
        assert!(
            e.ends_with(
                "m.csv row 3: label: \"x\\ry\" holds the control character '\\r'; labels may not"
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
