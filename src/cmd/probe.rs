//! `vidcls probe`: what FFmpeg finds in each input, as JSON Lines.

use super::error_text;
use crate::cli::ProbeArgs;
use crate::decode::{probe, VideoMeta};
use crate::exit::ExitCode;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct Probed<'a> {
    path: String,
    #[serde(flatten)]
    meta: &'a VideoMeta,
}

#[derive(Serialize)]
struct ProbeError {
    path: String,
    error: String,
}

pub fn run(args: ProbeArgs) -> Result<ExitCode> {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for p in &args.inputs {
        let path = p.to_string_lossy().into_owned();
        let line = match probe(p, args.count) {
            Ok(meta) => serde_json::to_string(&Probed { path, meta: &meta })?,
            Err(e) => {
                failed = true;
                eprintln!("vidcls: {}", error_text(&e));
                serde_json::to_string(&ProbeError {
                    path,
                    error: format!("{e:#}"),
                })?
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::from_failures(failed))
}
