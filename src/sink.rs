//! Where results go: stdout, a file, a file appended to (resuming), or, for JSON into a file,
//! a temporary file renamed at the end so a reader never sees half an array.

use crate::config::Output;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

pub struct Sink {
    pub out: Box<dyn Write + Send>,
    /// (temporary file, destination) to rename once the run is complete.
    pub rename: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    /// Opens the destination `o` names; refuses to overwrite a file unless forced or resuming.
    pub fn open(o: &Output) -> Result<Sink> {
        let Some(path) = &o.path else {
            return Ok(Sink {
                out: Box::new(std::io::stdout()),
                rename: None,
            });
        };
        if o.resume {
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .with_context(|| format!("cannot open {} for appending", path.display()))?;
            return Ok(Sink {
                out: Box::new(f),
                rename: None,
            });
        }
        if path.exists() && !o.force {
            bail!(
                "{} exists: use --force to overwrite it or --resume to continue it",
                path.display()
            );
        }
        let (target, rename) = if o.format.renamed_at_end() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
            (tmp.clone(), Some((tmp, path.clone())))
        } else {
            (path.clone(), None)
        };
        let f =
            File::create(&target).with_context(|| format!("cannot create {}", target.display()))?;
        Ok(Sink {
            out: Box::new(f),
            rename,
        })
    }

    /// Moves a temporary file into place (after the writer finished).
    pub fn commit(rename: Option<(PathBuf, PathBuf)>) -> Result<()> {
        if let Some((tmp, dest)) = rename {
            std::fs::rename(&tmp, &dest)
                .with_context(|| format!("cannot move results to {}", dest.display()))?;
        }
        Ok(())
    }
}
