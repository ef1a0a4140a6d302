//! The training data: a folder with one subfolder per class, or a CSV manifest; a
//! deterministic stratified split; the checks that stop a run before it starts.

use crate::inputs::{self, fnv1a, Input};
use crate::model::config::check_label;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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
    /// The recording the clip comes from (manifest column `group`): a group's clips stay on
    /// one side of every split.
    pub group: Option<String>,
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
    /// What the user should know about the listing (duplicate rows, split groups).
    pub warnings: Vec<String>,
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
        warnings: Vec::new(),
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
                    group: None,
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

/// A CSV with the columns `path,label` and optionally `split` (train, val or test) and
/// `group`; relative paths are relative to the manifest's folder. Labels are sorted by name.
/// A file listed again (the same file by any spelling of its path) is left out with a warning.
pub fn from_manifest(file: &Path) -> Result<Dataset> {
    let rows = manifest_rows(file)?;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| r.label.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut ds = Dataset {
        labels,
        examples: Vec::new(),
        skipped: Vec::new(),
        warnings: Vec::new(),
    };
    let mut first: HashMap<PathBuf, usize> = HashMap::new();
    for (k, row) in rows.iter().enumerate() {
        let same = std::fs::canonicalize(&row.path).unwrap_or_else(|_| row.path.clone());
        if let Some(&j) = first.get(&same) {
            ds.warnings.push(duplicate_row(file, &rows[j], row));
            continue;
        }
        first.insert(same, k);
        ds.examples.push(Example {
            path: row.path.clone(),
            label: ds
                .labels
                .iter()
                .position(|l| *l == row.label)
                .expect("listed"),
            split: row.split,
            group: row.group.clone(),
        });
    }
    Ok(ds)
}

/// One manifest row, as read.
struct Row {
    line: usize,
    path: PathBuf,
    label: String,
    split: Option<Split>,
    group: Option<String>,
}

fn manifest_rows(file: &Path) -> Result<Vec<Row>> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut r = ::csv::Reader::from_path(file)
        .with_context(|| format!("cannot read manifest {}", file.display()))?;
    let headers = r.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(pc), Some(lc)) = (col("path"), col("label")) else {
        bail!(
            "{}: needs the columns path,label (and optionally split, group)",
            file.display()
        );
    };
    let (sc, gc) = (col("split"), col("group"));
    let mut rows = Vec::new();
    for (n, row) in r.records().enumerate() {
        let line = n + 2;
        let row = row.with_context(|| format!("{} row {line}", file.display()))?;
        let field = |c: usize| row.get(c).unwrap_or("").trim().to_string();
        let split = match sc.map(field).as_deref() {
            None | Some("") => None,
            Some("train") => Some(Split::Train),
            Some("val") => Some(Split::Val),
            Some("test") => Some(Split::Test),
            Some(other) => bail!(
                "{} row {line}: split {other:?}: use train, val or test",
                file.display()
            ),
        };
        let (path, label) = (field(pc), field(lc));
        if path.is_empty() || label.is_empty() {
            bail!("{} row {line}: empty path or label", file.display());
        }
        check_label(&label).with_context(|| format!("{} row {line}: label", file.display()))?;
        let group = gc.map(field).filter(|g| !g.is_empty());
        rows.push(Row {
            line,
            path: base.join(path),
            label,
            split,
            group,
        });
    }
    Ok(rows)
}

fn duplicate_row(file: &Path, kept: &Row, dropped: &Row) -> String {
    let mut w = format!(
        "{} rows {} and {} list the same file {}; row {} is left out",
        file.display(),
        kept.line,
        dropped.line,
        dropped.path.display(),
        dropped.line
    );
    if kept.label != dropped.label {
        w += &format!(
            " (its label {:?} differs from row {}'s {:?})",
            dropped.label, kept.line, kept.label
        );
    }
    w
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
/// training. Manifest splits are kept. Clips of one `group` are one unit: they go to the same
/// side (the side a manifest gave one of them, else a side drawn for the group, whose class
/// is that of its first clip in path order).
pub fn split(ds: &mut Dataset, val_fraction: f64, seed: u64) {
    let mut by_class: BTreeMap<usize, Vec<Vec<usize>>> = BTreeMap::new();
    for unit in units(ds) {
        let given: Vec<Split> = unit.iter().filter_map(|&i| ds.examples[i].split).collect();
        if let Some(&side) = given.first() {
            if given.iter().any(|&s| s != side) {
                let g = ds.examples[unit[0]].group.clone().unwrap_or_default();
                ds.warnings.push(format!(
                    "group {g:?} is given more than one split in the manifest: its clips are \
                     on both sides, so the held-out figures are optimistic"
                ));
            }
            for &i in &unit {
                ds.examples[i].split.get_or_insert(side);
            }
        } else {
            by_class
                .entry(ds.examples[unit[0]].label)
                .or_default()
                .push(unit);
        }
    }
    for (label, mut units) in by_class {
        Rng::new(seed, &[label as u64, 0xda7a]).shuffle(&mut units);
        let n = units.len();
        let want = (n as f64 * val_fraction).round() as usize;
        let val = if val_fraction > 0.0 && n >= 3 {
            want.clamp(1, n - 2)
        } else {
            0
        };
        for (k, unit) in units.into_iter().enumerate() {
            for i in unit {
                ds.examples[i].split = Some(if k < val { Split::Val } else { Split::Train });
            }
        }
    }
}

/// The examples by group (one alone without a group), each in path order, the groups in the
/// order of their first paths.
fn units(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..ds.examples.len()).collect();
    order.sort_by(|&a, &b| ds.examples[a].path.cmp(&ds.examples[b].path));
    let mut groups: HashMap<&str, usize> = HashMap::new();
    let mut units: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match ds.examples[i].group.as_deref() {
            Some(g) if groups.contains_key(g) => units[groups[g]].push(i),
            g => {
                if let Some(g) = g {
                    groups.insert(g, units.len());
                }
                units.push(vec![i]);
            }
        }
    }
    units
}

/// Pairs of files with the same contents on different sides of the split (a copy in the
/// training set makes a held-out score optimistic). Only files of equal size are read.
pub fn identical_across_splits(ds: &Dataset) -> Vec<(&Example, &Example)> {
    let mut by_size: BTreeMap<u64, Vec<&Example>> = BTreeMap::new();
    for e in &ds.examples {
        if let Ok(m) = std::fs::metadata(&e.path) {
            by_size.entry(m.len()).or_default().push(e);
        }
    }
    let mut pairs = Vec::new();
    for same_size in by_size.values() {
        if same_size.iter().all(|e| e.split == same_size[0].split) {
            continue;
        }
        let mut by_hash: BTreeMap<[u8; 32], Vec<&Example>> = BTreeMap::new();
        for &e in same_size {
            if let Ok(h) = sha256(&e.path) {
                by_hash.entry(h).or_default().push(e);
            }
        }
        for same in by_hash.values() {
            for (k, a) in same.iter().enumerate() {
                if let Some(b) = same[..k].iter().find(|b| b.split != a.split) {
                    pairs.push((*b, *a));
                }
            }
        }
    }
    pairs
}

fn sha256(path: &Path) -> std::io::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(h.finalize().into()),
            n => h.update(&buf[..n]),
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
                    group: None,
                });
            }
        }
        Dataset {
            labels: (0..counts.len()).map(|i| format!("c{i}")).collect(),
            examples,
            skipped: Vec::new(),
            warnings: Vec::new(),
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

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vidcls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_file_listed_twice_is_used_once() {
        let dir = temp_dir("dup-rows");
        for f in ["a.mp4", "b.mp4"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        let manifest = dir.join("m.csv");
        let rows = "path,label,split\na.mp4,x,train\nb.mp4,y,\n./a.mp4,x,val\nb.mp4,z,\n";
        std::fs::write(&manifest, rows).unwrap();
        let ds = from_manifest(&manifest).unwrap();
        let paths: Vec<_> = ds.examples.iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, [dir.join("a.mp4"), dir.join("b.mp4")]);
        assert_eq!(ds.examples[0].split, Some(Split::Train));
        assert_eq!(ds.warnings.len(), 2, "{:?}", ds.warnings);
        assert!(
            ds.warnings[0].ends_with(&format!(
                "m.csv rows 2 and 4 list the same file {}; row 4 is left out",
                dir.join("./a.mp4").display()
            )),
            "{:?}",
            ds.warnings
        );
        assert!(
            ds.warnings[1].contains("rows 3 and 5")
                && ds.warnings[1].contains("its label \"z\" differs from row 3's \"y\""),
            "{:?}",
            ds.warnings
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_group_stays_on_one_side() {
        let dir = temp_dir("groups");
        let mut rows = "path,label,group,split\n".to_string();
        for i in 0..24 {
            // Six recordings per label, two clips each; recording r5 of label a is given a side.
            let (label, rec) = (["a", "b"][i % 2], i / 4);
            let split = if label == "a" && rec == 5 && i % 4 == 0 {
                "val"
            } else {
                ""
            };
            rows += &format!("{label}{i}.mp4,{label},{label}-r{rec},{split}\n");
        }
        std::fs::write(dir.join("m.csv"), rows).unwrap();
        let mut ds = from_manifest(&dir.join("m.csv")).unwrap();
        split(&mut ds, 0.3, 3);
        let mut sides: BTreeMap<String, Vec<Split>> = BTreeMap::new();
        for e in &ds.examples {
            sides
                .entry(e.group.clone().unwrap())
                .or_default()
                .push(e.split.unwrap());
        }
        assert_eq!(sides.len(), 12);
        for (g, s) in &sides {
            assert!(s.iter().all(|&x| x == s[0]), "group {g} split: {s:?}");
        }
        assert_eq!(sides["a-r5"], [Split::Val, Split::Val]);
        let val_groups = sides.values().filter(|s| s[0] == Split::Val).count();
        assert_eq!(val_groups, 5, "{sides:?}");
        assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn identical_files_across_splits_are_found() {
        let dir = temp_dir("identical");
        let file = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.join(name), bytes).unwrap();
            dir.join(name)
        };
        let ex = |path: PathBuf, split: Split| Example {
            path,
            label: 0,
            split: Some(split),
            group: None,
        };
        let ds = Dataset {
            labels: vec!["x".into()],
            examples: vec![
                ex(file("a.mp4", b"same bytes"), Split::Train),
                ex(file("b.mp4", b"same bytes"), Split::Val),
                ex(file("c.mp4", b"same bytez"), Split::Val),
                ex(file("d.mp4", b"other"), Split::Train),
                ex(file("e.mp4", b"other"), Split::Train),
            ],
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let pairs: Vec<_> = identical_across_splits(&ds)
            .into_iter()
            .map(|(a, b)| (a.path.file_name().unwrap(), b.path.file_name().unwrap()))
            .collect();
        assert_eq!(pairs, [("a.mp4".as_ref(), "b.mp4".as_ref())]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
