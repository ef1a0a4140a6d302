//! INPUT arguments -> the ordered list of videos to label.
//!
//! Files are taken as given (whatever their extension); directories are walked recursively in
//! name order for video extensions; `-` reads one path per line from stdin; URLs and `pipe:`
//! (a byte stream on stdin) are passed on as they are. An input that
//! cannot be listed becomes an error record, not an abort.

use anyhow::{bail, Result};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Extensions picked up when walking a directory (case-insensitive).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "m2ts", "wmv", "flv",
    "3gp", "ogv", "mxf", "gif",
];

/// One input: a path to label, or a problem found while listing.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Video(PathBuf),
    Unlistable { path: PathBuf, error: String },
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Input::Video(p) | Input::Unlistable { path: p, .. } => p,
        }
    }
}

fn is_video(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)))
}

/// Expands the INPUT arguments in order.
pub fn expand(args: &[PathBuf], follow_links: bool, stdin: &mut dyn BufRead) -> Vec<Input> {
    let mut out = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            for line in stdin.lines() {
                match line {
                    Ok(l) if l.trim().is_empty() => {}
                    Ok(l) => push_path(
                        &mut out,
                        PathBuf::from(l.trim_end_matches('\r')),
                        follow_links,
                    ),
                    Err(e) => out.push(Input::Unlistable {
                        path: "-".into(),
                        error: format!("cannot read stdin: {e}"),
                    }),
                }
            }
        } else {
            push_path(&mut out, arg.clone(), follow_links);
        }
    }
    out
}

fn push_path(out: &mut Vec<Input>, path: PathBuf, follow_links: bool) {
    if path.is_dir() {
        let walk = walkdir::WalkDir::new(&path)
            .follow_links(follow_links)
            .sort_by_file_name();
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) if is_video(e.path()) && (e.file_type().is_file() || follow_links) => {
                    out.push(Input::Video(e.into_path()))
                }
                Ok(_) => {}
                Err(e) => {
                    let p = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| path.clone());
                    let msg = if e.loop_ancestor().is_some() {
                        "symbolic link loop; skipped".to_string()
                    } else {
                        e.io_error()
                            .map_or_else(|| e.to_string(), |io| io.to_string())
                    };
                    out.push(Input::Unlistable {
                        path: p,
                        error: msg,
                    });
                }
            }
        }
    } else if path.exists() || path.is_symlink() || crate::decode::is_stream_name(&path) {
        // URLs and `pipe:` go to the decode stage, which applies the protocol allow-list.
        out.push(Input::Video(path));
    } else {
        out.push(Input::Unlistable {
            path,
            error: "no such file or directory".into(),
        });
    }
}

/// `--shard K/N` parsed: keep the inputs whose stable path hash lands in part K (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl std::str::FromStr for Shard {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Shard> {
        let Some((k, n)) = s.split_once('/') else {
            bail!("--shard {s:?}: expected K/N, e.g. 3/8");
        };
        let (k, n): (u64, u64) = match (k.trim().parse(), n.trim().parse()) {
            (Ok(k), Ok(n)) => (k, n),
            _ => bail!("--shard {s:?}: K and N must be whole numbers"),
        };
        if n == 0 || k == 0 || k > n {
            bail!("--shard {s:?}: need 1 <= K <= N");
        }
        Ok(Shard { k, n })
    }
}

/// FNV-1a, 64 bits: a stable hash across runs, machines and vidcls versions.
pub fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Shard {
    /// FNV-1a of the path's bytes.
    pub fn contains(&self, path: &Path) -> bool {
        fnv1a(path.as_os_str().as_encoded_bytes(), 0) % self.n == self.k - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_inputs() {
        let paths: Vec<PathBuf> = (0..500)
            .map(|i| PathBuf::from(format!("v/{i}.mp4")))
            .collect();
        let n = 7;
        let shards: Vec<Shard> = (1..=n)
            .map(|k| format!("{k}/{n}").parse().unwrap())
            .collect();
        for p in &paths {
            assert_eq!(
                shards.iter().filter(|s| s.contains(p)).count(),
                1,
                "{}",
                p.display()
            );
        }
        // Every shard gets some of 500 inputs.
        assert!(shards.iter().all(|s| paths.iter().any(|p| s.contains(p))));
    }

    #[test]
    fn shard_parse_errors() {
        for bad in ["3", "0/2", "3/2", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("2/5".parse::<Shard>().unwrap(), Shard { k: 2, n: 5 });
    }

    #[test]
    fn stdin_lists_paths_and_reports_missing() {
        let mut stdin = std::io::Cursor::new("Cargo.toml\n\n/no/such/file.mp4\n");
        let got = expand(&[PathBuf::from("-")], false, &mut stdin);
        assert_eq!(got[0], Input::Video("Cargo.toml".into()));
        assert!(
            matches!(&got[1], Input::Unlistable { path, .. } if path == Path::new("/no/such/file.mp4"))
        );
        assert_eq!(got.len(), 2);
    }
}
