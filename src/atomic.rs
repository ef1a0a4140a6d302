//! Files written whole, the one way every writer in vidcls creates a file it did not open for
//! appending (result files, `.npy` features, annotated videos, trained models, checkpoints).
//!
//! - The temporary file sits beside its destination under a random name, created with
//!   `O_CREAT | O_EXCL` and mode 0600: a symlink planted at any name is never followed, and no
//!   one else can read the file while it is written.
//! - The move into place refuses to replace a file that appeared meanwhile
//!   (`renameat2(RENAME_NOREPLACE)`), unless replacing was asked for (`--force`).
//! - A destination that is a symlink, dangling or not, counts as existing: it is replaced (the
//!   link itself, never its target) only when replacing was asked for.
//! - On commit the file takes the permissions a newly created file would have (0666 less the
//!   umask), so results are as readable as any other file the user makes.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::TempPath;

/// Whether a destination that already exists may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse, at the start and again at the move into place.
    Refuse,
    /// Replace it (`--force`, or a file vidcls owns such as a checkpoint).
    Replace,
}

impl Existing {
    pub fn replace_if(force: bool) -> Existing {
        if force {
            Existing::Replace
        } else {
            Existing::Refuse
        }
    }
}

/// A temporary file that becomes `dest` on [`Pending::commit`], and is removed if dropped.
#[derive(Debug)]
pub struct Pending {
    tmp: TempPath,
    dest: PathBuf,
    existing: Existing,
}

/// Fails when `dest` exists (a symlink counts, even a dangling one) and may not be replaced.
pub fn check_dest(dest: &Path, existing: Existing) -> Result<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => bail!("{} is a directory", dest.display()),
        Ok(m) if existing == Existing::Refuse => {
            let what = if m.file_type().is_symlink() {
                "is a symbolic link"
            } else {
                "exists"
            };
            bail!("{} {what}: use --force to replace it", dest.display())
        }
        _ => Ok(()),
    }
}

/// Creates the temporary file for `dest` in `dest`'s folder, after [`check_dest`].
pub fn create(dest: &Path, existing: Existing) -> Result<(File, Pending)> {
    check_dest(dest, existing)?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let (file, tmp) = file.into_parts();
    crate::interrupt::remove_on_interrupt(tmp.to_path_buf());
    let pending = Pending {
        tmp,
        dest: dest.to_path_buf(),
        existing,
    };
    Ok((file, pending))
}

/// Writes `dest` whole from `bytes`.
pub fn write(dest: &Path, existing: Existing, bytes: &[u8]) -> Result<()> {
    write_with(dest, existing, |file, tmp| {
        file.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))
    })
}

/// Runs `write` on the temporary file for `dest` (by handle, or by path for writers that open
/// the file by name, such as FFmpeg's muxers) and moves the file into place when it succeeds.
/// When `write` fails, or the run is interrupted, nothing is left.
pub fn write_with<T>(
    dest: &Path,
    existing: Existing,
    write: impl FnOnce(&mut File, &Path) -> Result<T>,
) -> Result<T> {
    let (mut file, pending) = create(dest, existing)?;
    let made = write(&mut file, pending.path())?;
    file.sync_data()
        .with_context(|| format!("cannot write {}", pending.path().display()))?;
    pending.commit()?;
    Ok(made)
}

impl Pending {
    /// The temporary file's path, for writers that open by name (FFmpeg's muxers) and for
    /// removal on interrupt.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The file this becomes.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Moves the finished file into place; with [`Existing::Refuse`], fails rather than
    /// replaces a file that appeared at the destination during the run.
    pub fn commit(self) -> Result<()> {
        let mode = 0o666 & !umask();
        std::fs::set_permissions(&self.tmp, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the permissions of {}", self.tmp.display()))?;
        let Pending {
            tmp,
            dest,
            existing,
        } = self;
        crate::interrupt::forget(&tmp);
        let moved = match existing {
            Existing::Refuse => tmp.persist_noclobber(&dest),
            Existing::Replace => tmp.persist(&dest),
        };
        moved.map_err(|e| {
            let why = if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                "it appeared during the run and was left as it is; the results were not written"
                    .to_string()
            } else {
                e.error.to_string()
            };
            anyhow::anyhow!("cannot move the results to {}: {why}", dest.display())
        })
    }
}

/// The process's file-creation mask (from /proc, which reads it without changing it), read
/// once.
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

/// A private folder (mode 0700, random name) under the system's temporary folder, removed
/// when dropped: the home of copies of standard input.
pub fn private_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("cannot create a private temporary folder")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vidcls-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temporary_file_is_private_and_result_follows_the_umask() {
        let d = dir("mode");
        let dest = d.join("out.json");
        let (_f, pending) = create(&dest, Existing::Refuse).unwrap();
        let tmp_mode = std::fs::metadata(pending.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(tmp_mode & 0o777, 0o600);
        assert_eq!(pending.path().parent(), Some(d.as_path()));
        pending.commit().unwrap();
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
    }

    #[test]
    fn a_file_that_appears_during_the_run_is_not_replaced() {
        let d = dir("race");
        let dest = d.join("out.json");
        let (mut f, pending) = create(&dest, Existing::Refuse).unwrap();
        f.write_all(b"ours").unwrap();
        std::fs::write(&dest, b"theirs").unwrap();
        let err = pending.commit().unwrap_err().to_string();
        assert!(err.contains("appeared during the run"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"theirs");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "temporary file left"
        );
    }

    #[test]
    fn symlinks_at_the_destination_are_refused_and_replaced_only_when_forced() {
        let d = dir("link");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let dest = d.join("out.json");
        symlink(&victim, &dest).unwrap();
        assert!(create(&dest, Existing::Refuse).is_err());
        let dangling = d.join("dangling.json");
        symlink(d.join("nowhere"), &dangling).unwrap();
        let err = write(&dangling, Existing::Refuse, b"x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!d.join("nowhere").exists());
        write(&dest, Existing::Replace, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&dest)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let d = dir("failed");
        let dest = d.join("out.mp4");
        let r: Result<()> = write_with(&dest, Existing::Refuse, |file, _| {
            file.write_all(b"half")?;
            bail!("broken")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        write_with(&dest, Existing::Refuse, |file, _| {
            Ok(file.write_all(b"whole")?)
        })
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
    }

    #[test]
    fn dropped_without_commit_leaves_nothing() {
        let d = dir("drop");
        let (_f, pending) = create(&d.join("x.npy"), Existing::Refuse).unwrap();
        let tmp = pending.path().to_path_buf();
        drop(pending);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    }
}
