//! `vidcls report`: the records of earlier runs (JSON Lines, one file per `--shard K/N`) written
//! in any output format by the same writers predict uses, without a model; `--inputs` checks
//! that the records cover a run's input list.

use crate::config::{self, ReportPlan};
use crate::decode::{ClipPlan, Video};
use crate::exit::ExitCode;
use crate::pipeline::written;
use crate::report::escape::terminal;
use crate::report::read::{self, Coverage, InputRecords, Loaded};
use crate::report::{self, spread, thumbnail, Format, Record, Thumbnail, VideoResult};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

pub fn run(plan: ReportPlan) -> Result<ExitCode> {
    let format = plan.output.format;
    let listed = plan.inputs.as_deref().map(read::input_list).transpose()?;
    let mut loaded = read::load(&plan.records)?;
    for note in &loaded.torn {
        eprintln!("vidcls: warning: {}", terminal(note));
    }
    if !plan.mixed {
        loaded.check_one_model()?;
    }
    if let Some(l) = &listed {
        loaded.order_by(l);
    }
    format.check_inputs(loaded.inputs.len())?;
    write(&plan.output, &mut loaded)?;
    let coverage = loaded.coverage(listed.as_deref());
    show_coverage(
        &loaded,
        &coverage,
        listed.as_ref().map(Vec::len),
        plan.quiet,
    );
    Ok(ExitCode::from_failures(!coverage.complete()))
}

/// Writes every input's records to stdout or, all at once, to `-o FILE` (moved into place
/// when complete; an existing file is refused without `--force`).
fn write(o: &config::Output, loaded: &mut Loaded) -> Result<()> {
    let format = o.format;
    let (out, pending): (Box<dyn Write + Send>, _) = match &o.path {
        Some(path) => {
            let existing = crate::atomic::Existing::replace_if(o.force);
            let (file, pending) = crate::atomic::create(path, existing)?;
            (Box::new(std::io::BufWriter::new(file)), Some(pending))
        }
        None => (Box::new(std::io::stdout()), None),
    };
    let csv = report::CsvOptions {
        header_done: false,
        cells: o.csv_cells,
    };
    let about = loaded.about();
    let mut writer = report::writer(format, out, csv, &about);
    // Pictures are made a few inputs at a time and dropped once written: memory stays flat.
    let batch = config::cores().max(1);
    for inputs in loaded.inputs.chunks_mut(batch) {
        if format == Format::Html {
            add_pictures(inputs);
        }
        for input in inputs {
            if !written(writer.write_input(&input.records))? {
                return Ok(());
            }
            drop_pictures(&mut input.records);
        }
    }
    if !written(writer.finish())? {
        return Ok(());
    }
    pending.map_or(Ok(()), |p| p.commit())
}

/// Each classified record's pictures, decoded again from its video (one thread per input);
/// an input whose video cannot be read gets a note on stderr and on the page instead.
fn add_pictures(inputs: &mut [InputRecords]) {
    let notes: Vec<Option<String>> = std::thread::scope(|s| {
        let running: Vec<_> = inputs
            .iter_mut()
            .map(|input| s.spawn(move || pictures(input).err().map(|e| format!("{e:#}"))))
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("a picture thread panicked"))
            .collect()
    });
    for (input, note) in inputs.iter_mut().zip(notes) {
        let Some(why) = note else { continue };
        let note = format!("pictures left out: {why}");
        eprintln!("vidcls: {}: {}", terminal(&input.path), terminal(&note));
        for v in results(&mut input.records) {
            v.warnings.push(note.clone());
        }
    }
}

/// The pictures predict's page shows for each of the input's records: the frames its clips
/// used, picked and shrunk as predict does, from the video at the recorded path.
fn pictures(input: &mut InputRecords) -> Result<()> {
    let path = Path::new(&input.path);
    let meta = std::fs::metadata(path).context("the video is not reachable")?;
    if !meta.is_file() {
        bail!("the recorded path is not a file");
    }
    let mut video = Video::open(path)?;
    for v in results(&mut input.records) {
        v.thumbnails = record_pictures(&mut video, v)?;
    }
    Ok(())
}

fn record_pictures(video: &mut Video, v: &VideoResult) -> Result<Vec<Thumbnail>> {
    let spec = config::thumb_spec(v.window.is_some());
    let times: Vec<f64> = v.frame_times.iter().flatten().copied().collect();
    let picked: Vec<f64> = spread(times.len(), spec.per_unit)
        .into_iter()
        .map(|i| times[i])
        .collect();
    let (Some(&start), Some(&end)) = (picked.first(), picked.last()) else {
        return Ok(Vec::new());
    };
    let plan = ClipPlan {
        start,
        end,
        times: picked,
    };
    let clip = video.read_clip(&plan)?;
    clip.frames
        .iter()
        .map(|f| thumbnail(f, spec.height))
        .collect()
}

fn drop_pictures(records: &mut [Record]) {
    for v in results(records) {
        v.thumbnails = Vec::new();
    }
}

fn results(records: &mut [Record]) -> impl Iterator<Item = &mut VideoResult> {
    records.iter_mut().filter_map(|r| match r {
        Record::Ok(v) => Some(v),
        _ => None,
    })
}

/// Lists on stderr what keeps the records from covering the run: missing inputs (of a
/// `--inputs` list of `listed` paths), inputs recorded twice, failed inputs; then one line of
/// counts (unless quiet and complete).
fn show_coverage(loaded: &Loaded, c: &Coverage, listed: Option<usize>, quiet: bool) {
    for p in &c.missing {
        eprintln!("vidcls: missing: {}", terminal(p));
    }
    for d in &c.duplicates {
        eprintln!(
            "vidcls: recorded twice: {} (in {} and {}; the first kept)",
            terminal(&d.path),
            terminal(&d.first.to_string_lossy()),
            terminal(&d.again.to_string_lossy())
        );
    }
    for e in &c.failed {
        eprintln!("vidcls: failed: {}", e.shown());
    }
    for p in &c.unlisted {
        eprintln!("vidcls: not in --inputs: {}", terminal(p));
    }
    if quiet && c.complete() {
        return;
    }
    let records: usize = loaded.inputs.iter().map(|i| i.records.len()).sum();
    let listed = listed.map_or(String::new(), |n| format!("{n} listed, "));
    eprintln!(
        "vidcls: {records} record(s) from {} file(s); {listed}{} recorded, {} missing, {} recorded twice, {} failed{}",
        loaded.files.len(),
        c.recorded,
        c.missing.len(),
        c.duplicates.len(),
        c.failed.len(),
        if c.complete() { "" } else { " (incomplete)" }
    );
}
