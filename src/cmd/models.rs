//! `vidcls models`: the models there are (built in, installed, pullable), and `models pull`.

use crate::config::ModelsPlan;
use crate::exit::ExitCode;
use crate::hub;
use crate::model;
use crate::report::escape::terminal;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct ModelRow {
    name: String,
    architecture: String,
    frames: usize,
    size: u32,
    min_frames: usize,
    variable_frames: bool,
    parameters: Option<u64>,
    label_set: String,
    classes: usize,
    file: String,
    file_bytes: Option<u64>,
    weights: String,
    /// `built in`, `installed` (pulled), `available` (a file on the model path), `pullable`
    /// or `missing`.
    status: &'static str,
    /// Size of the published weights file a pull downloads.
    download_bytes: Option<u64>,
    /// Published Kinetics-400 top-1 / top-5 (percent), from the weights' metadata.
    kinetics400_top1: Option<f64>,
    kinetics400_top5: Option<f64>,
}

pub fn run(plan: ModelsPlan) -> Result<ExitCode> {
    match plan {
        ModelsPlan::Pull { target, options } => pull(&target, &options),
        ModelsPlan::List { json } => list(json),
    }
}

fn pull(target: &hub::Target, opts: &hub::PullOptions) -> Result<ExitCode> {
    let done = hub::pull(target, opts)?;
    eprintln!("vidcls: sha256 {} verified", done.sha256);
    if let Some(r) = &done.precision {
        let a = r.bf16_top1_agreement;
        eprintln!(
            "vidcls: bf16 top-1 agreement with fp32: {} on {} calibration clips",
            a.map_or("did not run".into(), |a| format!("{:.0}%", a * 100.0)),
            r.clips
        );
    }
    println!(
        "installed {} ({}); run it with: vidcls predict -m {} VIDEO",
        done.name,
        done.model.display(),
        done.name
    );
    Ok(ExitCode::Success)
}

fn list(json: bool) -> Result<ExitCode> {
    let catalogue = model::available();
    for (path, why) in &catalogue.unreadable {
        let path = path.display().to_string();
        eprintln!(
            "vidcls: warning: skipped {}: {}",
            terminal(&path),
            terminal(why)
        );
    }
    let rows: Vec<ModelRow> = catalogue.models.iter().map(model_row).collect();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::Success);
    }
    write_table(&mut out, &rows)?;
    if rows.iter().any(|r| r.status == "pullable") {
        writeln!(
            out,
            "\npullable models install with: vidcls models pull NAME"
        )?;
    }
    if rows.iter().any(|r| r.status == "missing") {
        writeln!(
            out,
            "missing model files are made by scripts/export_models.py"
        )?;
    }
    Ok(ExitCode::Success)
}

fn model_row(l: &model::Listed) -> ModelRow {
    let (file, file_bytes) = match &l.weights {
        None => (
            "(built in)".to_string(),
            Some(model::builtin::WEIGHTS.len() as u64),
        ),
        Some(p) => (
            p.display().to_string(),
            std::fs::metadata(p).ok().map(|m| m.len()),
        ),
    };
    let c = &l.config;
    let pretrained = c.pretrained.as_ref();
    let pulled = l
        .weights
        .as_ref()
        .is_some_and(|w| w.starts_with(model::cache_dir()));
    let status = match (l.builtin, file_bytes.is_some(), pretrained.is_some()) {
        (true, _, _) => "built in",
        (false, true, _) if pulled => "installed",
        (false, true, _) => "available",
        (false, false, true) => "pullable",
        (false, false, false) => "missing",
    };
    let accuracy = pretrained.and_then(|p| p.kinetics400_accuracy);
    ModelRow {
        status,
        download_bytes: pretrained.and_then(|p| p.download_bytes()),
        kinetics400_top1: accuracy.map(|a| a.0),
        kinetics400_top5: accuracy.map(|a| a.1),
        name: c.name.clone(),
        architecture: c.architecture.clone(),
        frames: c.frames,
        size: c.crop,
        min_frames: c.min_frames,
        variable_frames: c.variable_frames,
        parameters: c.parameters,
        label_set: c.label_set.clone(),
        classes: c.labels.len(),
        file,
        file_bytes,
        weights: c.weights.source.clone(),
    }
}

/// The models as an aligned table for people.
fn write_table(out: &mut impl Write, rows: &[ModelRow]) -> std::io::Result<()> {
    let head = [
        "NAME",
        "ARCHITECTURE",
        "FRAMESxSIZE",
        "PARAMS",
        "LABELS",
        "STATUS",
        "K400 TOP-1",
        "WEIGHTS",
    ]
    .map(String::from);
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.architecture.clone(),
                format!("{}x{}", r.frames, r.size),
                r.parameters
                    .map_or("?".into(), |p| format!("{:.1}M", p as f64 / 1e6)),
                format!("{} ({})", r.label_set, r.classes),
                match (r.status, r.file_bytes, r.download_bytes) {
                    ("pullable", _, Some(d)) => format!("pullable ({:.0} MB)", d as f64 / 1e6),
                    (s, Some(b), _) if s != "missing" => format!("{s} ({:.1} MB)", b as f64 / 1e6),
                    (s, _, _) => s.to_string(),
                },
                r.kinetics400_top1
                    .map_or("-".into(), |a| format!("{a:.1}%")),
                r.weights.clone(),
            ]
        })
        .collect();
    let mut widths = [0usize; 8];
    for row in std::iter::once(&head).chain(&table) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
