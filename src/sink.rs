//! Where results go: stdout, a file, a file appended to (resuming), or, for JSON and HTML
//! into a file, a temporary file moved into place at the end so a reader never sees half an
//! array ([`crate::atomic`]).

use crate::atomic::{self, Existing, Pending};
use crate::config::Output;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub struct Sink {
    pub out: Box<dyn Write + Send>,
    /// The temporary file to move into place once the run is complete.
    pub rename: Option<Pending>,
}

impl Sink {
    /// Opens the destination `o` names; refuses to overwrite a file (or write through a
    /// symlink) unless forced or resuming.
    pub fn open(o: &Output) -> Result<Sink> {
        let Some(path) = &o.path else {
            return Ok(Sink {
                out: Box::new(std::io::stdout()),
                rename: None,
            });
        };
        let existing = Existing::replace_if(o.force);
        if o.resume {
            return Ok(Sink {
                out: Box::new(open_resumed(path)?),
                rename: None,
            });
        }
        if o.format.renamed_at_end() {
            let (file, pending) = atomic::create(path, existing)?;
            return Ok(Sink {
                out: Box::new(file),
                rename: Some(pending),
            });
        }
        Ok(Sink {
            out: Box::new(create_streamed(path, existing)?),
            rename: None,
        })
    }

    /// Moves a temporary file into place (after the writer finished).
    pub fn commit(rename: Option<Pending>) -> Result<()> {
        rename.map_or(Ok(()), Pending::commit)
    }
}

/// A file written record by record, so a killed run leaves what it finished. Without
/// `--force` it is created with `O_EXCL` (a file or symlink that appears first wins); with it,
/// what is there is replaced, a symlink by a file rather than through the link.
pub fn create_streamed(path: &Path, existing: Existing) -> Result<File> {
    atomic::check_dest(path, existing)?;
    let mut options = OpenOptions::new();
    options.write(true).custom_flags(libc::O_NOFOLLOW);
    match existing {
        Existing::Refuse => options.create_new(true),
        Existing::Replace => {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                std::fs::remove_file(path)
                    .with_context(|| format!("cannot replace the link {}", path.display()))?;
            }
            options.create(true).truncate(true)
        }
    };
    options.open(path).with_context(|| match existing {
        Existing::Refuse if path.exists() => format!(
            "{} appeared before the run started: use --force to replace it",
            path.display()
        ),
        _ => format!("cannot create {}", path.display()),
    })
}

/// The output of an earlier run, appended to. Only a regular file is continued: a symlink at
/// the name is refused, not followed.
fn open_resumed(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => format!(
                "{} is a symbolic link: --resume continues only a regular file",
                path.display()
            ),
            _ => format!("cannot open {} for appending", path.display()),
        })?;
    if !file.metadata()?.is_file() {
        bail!("{} is not a regular file: cannot resume it", path.display());
    }
    Ok(file)
}
