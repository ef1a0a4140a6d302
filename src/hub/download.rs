//! One file over HTTP(S): resumable (Range), checked (size, sha256), atomic (a `.part` file
//! renamed into place only once it is verified), with a progress bar on a terminal.

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a downloaded file must be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// sha256: 64 hex digits, or a prefix (at least 8).
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
}

/// How to talk to the server.
#[derive(Debug, Clone)]
pub struct Http {
    /// A read that waits longer than this fails (a stalled server).
    pub timeout: Duration,
    /// `Authorization: Bearer` token (the Hugging Face Hub's `HF_TOKEN`).
    pub token: Option<String>,
    pub progress: bool,
}

impl Http {
    fn agent(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .timeout_connect(self.timeout)
            .timeout_read(self.timeout)
            .user_agent(concat!("vidcls/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    fn get(&self, url: &str, from: u64) -> Result<ureq::Response> {
        let mut req = self.agent().get(url).set("Accept-Encoding", "identity");
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if from > 0 {
            req = req.set("Range", &format!("bytes={from}-"));
        }
        match req.call() {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(code, r)) => {
                bail!("{url}: HTTP {code} {}", r.status_text())
            }
            Err(e) => Err(anyhow!("{url}: {e}")),
        }
    }

    /// A small text file (a config), whole, in memory, with the commit the server names
    /// (`X-Repo-Commit`: the Hub resolves a branch to one).
    pub fn text(&self, url: &str) -> Result<(String, Option<String>)> {
        let r = self.get(url, 0)?;
        refuse_html(&r, url)?;
        let commit = r.header("x-repo-commit").map(String::from);
        let body = r
            .into_string()
            .with_context(|| format!("{url}: cannot read the body"))?;
        Ok((body, commit))
    }

    /// Downloads `url` to `dest`, resuming `dest.part` where an earlier try left it. The part
    /// file is removed when the result is wrong; `dest` appears only once it is checked.
    /// `etag_sha256`: also check the sha256 the server states in its ETag (the Hub's LFS files).
    pub fn fetch(&self, url: &str, dest: &Path, expect: &Expect, etag_sha256: bool) -> Result<()> {
        let part = part_path(dest);
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let resp = if expect.bytes.is_some_and(|b| have >= b) {
            None // complete already: only the checks are left
        } else {
            Some(self.get(url, have)?)
        };
        let mut expect = expect.clone();
        if let Some(r) = resp {
            refuse_html(&r, url)?;
            if etag_sha256 {
                if let Some(sha) = etag_sha(&r) {
                    expect.sha256.get_or_insert(sha);
                }
            }
            let resumed = r.status() == 206 && have > 0;
            let total = content_total(&r, if resumed { have } else { 0 }).or(expect.bytes);
            let mut out = open_part(&part, resumed)?;
            let start = if resumed { have } else { 0 };
            copy_with_progress(r.into_reader(), &mut out, start, total, self.progress)
                .with_context(|| {
                    format!("{url}: download interrupted (run the same command again to resume)")
                })?;
            out.sync_all()?;
        }
        if let Err(e) = verify(&part, &expect) {
            let _ = std::fs::remove_file(&part);
            return Err(e.context(format!("{url}: the download is not the published file")));
        }
        std::fs::rename(&part, dest)
            .with_context(|| format!("cannot move {} into place", part.display()))
    }
}

pub fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// An error page (a login wall, a proxy's notice) served with status 200 is not a file.
fn refuse_html(r: &ureq::Response, url: &str) -> Result<()> {
    if r.content_type().eq_ignore_ascii_case("text/html") {
        bail!(
            "{url}: the server sent an HTML page (HTTP {}), not the file",
            r.status()
        );
    }
    Ok(())
}

/// A sha256 the server states in `X-Linked-Etag` or `ETag` (quotes and `W/` removed).
fn etag_sha(r: &ureq::Response) -> Option<String> {
    ["x-linked-etag", "etag"].iter().find_map(|h| {
        let v = r
            .header(h)?
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_lowercase();
        (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then_some(v)
    })
}

/// The whole file's size from `Content-Range: bytes a-b/N` or `Content-Length` (+ offset).
fn content_total(r: &ureq::Response, offset: u64) -> Option<u64> {
    if let Some(cr) = r.header("content-range") {
        return cr.rsplit('/').next().and_then(|n| n.parse().ok());
    }
    r.header("content-length")
        .and_then(|n| n.parse::<u64>().ok())
        .map(|n| n + offset)
}

/// The part file, private to this user, never through a symlink; appended to when resuming.
fn open_part(part: &Path, append: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    if append {
        o.append(true);
    } else {
        o.truncate(true);
    }
    o.open(part)
        .with_context(|| format!("cannot write {}", part.display()))
}

fn copy_with_progress(
    mut from: impl Read,
    to: &mut File,
    start: u64,
    total: Option<u64>,
    progress: bool,
) -> Result<()> {
    let bar = if progress {
        let bar = ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bytes:>10} / {total_bytes:<10} {wide_bar} {bytes_per_sec:>12} {eta:>4}",
            )
            .unwrap(),
        );
        bar.set_position(start);
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n])?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The file's size and sha256 against what was published.
pub fn verify(path: &Path, expect: &Expect) -> Result<()> {
    let len = std::fs::metadata(path)?.len();
    if let Some(want) = expect.bytes {
        if len != want {
            bail!("{len} bytes, the published file has {want}");
        }
    }
    let Some(want) = &expect.sha256 else {
        return Ok(());
    };
    let got = sha256_file(path)?;
    if !got.starts_with(&want.to_lowercase()) {
        bail!("sha256 {got}, the published file's is {want}");
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}
