//! `vidcls probe`: what FFmpeg finds in each input, as JSON Lines.

use super::error_text;
use crate::config::ProbePlan;
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

pub fn run(plan: ProbePlan) -> Result<ExitCode> {
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for p in &plan.inputs {
        let path = p.to_string_lossy().into_owned();
        let line = match probe(p, plan.count, &plan.access) {
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
