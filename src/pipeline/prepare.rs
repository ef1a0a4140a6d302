//! One input, on a decode worker: open it, plan its clips (whole video or windows), decode
//! them and turn each clip into views with the caller's function.

use crate::decode::{plan_clips, Access, ClipPlan, FrameRows, RowSink, SamplingSpec, Video};
use crate::report::{
    spread, thumbnails_in, FileError, Small, SmallRows, Stage, ThumbSpec, Thumbnail, Window,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Sliding windows: `length` seconds each, a new one every `hop` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    pub length: f64,
    pub hop: f64,
}

/// Where clips come from in each input.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSettings {
    pub spec: SamplingSpec,
    /// One group of clips per window instead of one for the whole video.
    pub windows: Option<WindowSpec>,
    pub thumbnails: Option<ThumbSpec>,
    /// Pictures above this many pixels are refused (the input's record says so).
    pub max_pixels: u64,
    /// Inputs with more windows than this are refused before decoding (the record says so).
    pub max_windows: usize,
    /// What opening an input may do.
    pub access: Access,
}

/// A group of views that yields one result: a whole video, or one window of it.
#[derive(Debug)]
pub struct Unit<V> {
    pub window: Option<Window>,
    pub views: Vec<V>,
    /// Presentation times of the frames of each clip.
    pub frame_times: Vec<Vec<f64>>,
    pub clips: usize,
    /// Frames repeated because the video ended inside a clip.
    pub padded: usize,
    /// Pictures of some of those frames (empty unless [`ClipSettings::thumbnails`] asks).
    pub thumbnails: Vec<Thumbnail>,
}

/// A decoded, preprocessed input.
#[derive(Debug)]
pub struct Prepared<V> {
    pub path: String,
    pub duration: f64,
    pub warnings: Vec<String>,
    pub units: Vec<Unit<V>>,
    pub decode_ms: f64,
    pub preprocess_ms: f64,
}

/// What a worker sends of one input, in order: `Opened`, each clip's views as soon as they are
/// made, then `Done`. Memory per input stays bounded however many clips or windows it has:
/// the runner takes the views into batches as they come.
#[derive(Debug)]
pub enum Piece<V> {
    Opened {
        path: String,
        duration: f64,
    },
    Clip(ClipPiece<V>),
    Done {
        warnings: Vec<String>,
        decode_ms: f64,
        preprocess_ms: f64,
    },
}

impl<V> Piece<V> {
    /// How many views the piece holds (what an input's queue counts).
    pub fn views(&self) -> usize {
        match self {
            Piece::Clip(c) => c.views.len(),
            _ => 0,
        }
    }
}

/// One clip of a unit (its views, where its frames came from, its pictures).
#[derive(Debug)]
pub struct ClipPiece<V> {
    /// Which unit (the whole video, or the n-th window) it belongs to; clips come unit by unit.
    pub unit: usize,
    pub window: Option<Window>,
    pub views: Vec<V>,
    pub times: Vec<f64>,
    pub padded: usize,
    pub thumbnails: Vec<Thumbnail>,
}

impl<V> Prepared<V> {
    /// Adds a piece to the input it belongs to.
    fn add(&mut self, piece: Piece<V>) {
        match piece {
            Piece::Opened { path, duration } => (self.path, self.duration) = (path, duration),
            Piece::Clip(c) => {
                if self.units.len() <= c.unit {
                    self.units.push(Unit {
                        window: c.window,
                        views: Vec::new(),
                        frame_times: Vec::new(),
                        clips: 0,
                        padded: 0,
                        thumbnails: Vec::new(),
                    });
                }
                let unit = self.units.last_mut().expect("pushed above");
                unit.views.extend(c.views);
                unit.frame_times.push(c.times);
                unit.clips += 1;
                unit.padded += c.padded;
                unit.thumbnails.extend(c.thumbnails);
            }
            Piece::Done {
                warnings,
                decode_ms,
                preprocess_ms,
            } => {
                self.warnings = warnings;
                (self.decode_ms, self.preprocess_ms) = (decode_ms, preprocess_ms);
            }
        }
    }
}

/// Windows of a video of `duration` seconds (from its container's metadata), in seconds of
/// presentation time:
///
/// - the first starts at 0; each next one starts `hop` after the one before (they overlap when
///   `hop < length` and leave gaps when `hop > length`);
/// - the last is the first that reaches the end, and it is cut at the video's end, so it can be
///   shorter than `length` (10 s in 4-s windows: 0-4, 4-8, 8-10); one that ends exactly at the
///   end is the last (no empty window after it);
/// - a video shorter than one window has one window, the whole video.
///
/// Each window's clips are placed inside it by `decode::plan_clips` (the centre clip, or N
/// spread over it). A window shorter than one clip (a short last window, or `length` below the
/// clip's span) gets clips that start at its start and run past its end; past the video's end
/// the last frame is repeated (the record's `padded_frames`). The frame for a time is the last
/// one shown at or before it, so reported frame times are the video's own timestamps.
/// `tests/embed.rs` checks these cases end to end.
pub fn windows(duration: f64, spec: WindowSpec) -> impl Iterator<Item = Window> {
    let mut next = Some(0.0);
    std::iter::from_fn(move || {
        let start: f64 = next?;
        let end = (start + spec.length).min(duration);
        let last = start + spec.length >= duration - 1e-9;
        next = (!last).then_some(start + spec.hop);
        Some(Window::new(start, end))
    })
}

/// Refuses an input with more than `max` windows, before anything is decoded: a timestamp far
/// in the future (a crafted or broken file) would otherwise plan windows without end.
fn check_windows(duration: f64, spec: WindowSpec, max: usize) -> anyhow::Result<()> {
    if windows(duration, spec).take(max.saturating_add(1)).count() <= max {
        return Ok(());
    }
    let planned = ((duration - spec.length) / spec.hop).ceil() + 1.0;
    anyhow::bail!(
        "{planned:.0} windows of {} s every {} s in its {duration:.1} s (its last timestamp); \
         at most {max} an input: raise --max-windows or --hop",
        spec.length,
        spec.hop
    )
}

/// Only regular files: opening a FIFO or a device would block or never end. URLs and `pipe:`
/// are streams by request, and so is a device named with an input format (`--input-format`).
fn check_regular_file(path: &Path, access: &Access) -> anyhow::Result<()> {
    if crate::decode::locate(path).is_stream() || access.input_format.is_some() {
        return Ok(());
    }
    let m = std::fs::metadata(path)?;
    if m.is_file() {
        Ok(())
    } else if m.is_dir() {
        anyhow::bail!("a directory")
    } else {
        anyhow::bail!("not a regular file (FIFO, socket or device)")
    }
}

/// Per-stage stopwatch for one input.
struct Clock {
    since: Instant,
    decode: Duration,
    preprocess: Duration,
}

impl Clock {
    fn lap(&mut self) -> Duration {
        let d = self.since.elapsed();
        self.since = Instant::now();
        d
    }
    /// Decoding since the last lap, `part` of which was preprocessing.
    fn decoded_less(&mut self, part: Duration) {
        let d = self.lap();
        self.decode += d.saturating_sub(part);
        self.preprocess += part.min(d);
    }
    fn preprocessed(&mut self) {
        let d = self.lap();
        self.preprocess += d;
    }
}

/// One frame being shrunk as its rows are converted: a [`RowSink`] that gives its result at
/// the end.
pub trait Shrink<F>: RowSink {
    fn finish(self: Box<Self>) -> anyhow::Result<F>;
}

/// Starts shrinking a frame, given its size and its clip's first frame's size (height x width).
pub type StartShrink<'a, F> =
    dyn Fn((u32, u32), (u32, u32)) -> anyhow::Result<Box<dyn Shrink<F>>> + 'a;

/// What a worker does with decoded frames: `frame` starts shrinking one, given its size and
/// the size of its clip's first frame (both height x width), and is fed the frame's rows band by
/// band as they are converted, so an input never holds a full-size RGB picture; `views` turns
/// a clip of shrunk frames into views.
pub struct MakeViews<'a, F, V> {
    pub frame: &'a StartShrink<'a, F>,
    pub views: &'a dyn Fn(&[F]) -> anyhow::Result<Vec<V>>,
}

/// Decodes every planned clip of `path`, turns each into views with `make` and hands them to
/// `emit` clip by clip (see [`Piece`]); stops early, without an error, when `emit` says nobody
/// listens.
pub fn prepare_each<F: Clone, V>(
    path: &Path,
    clips: &ClipSettings,
    make: &MakeViews<'_, F, V>,
    emit: &mut dyn FnMut(Piece<V>) -> bool,
) -> Result<(), FileError> {
    let shown = path.to_string_lossy().into_owned();
    let fail = |stage: Stage, e: anyhow::Error| FileError::new(shown.clone(), stage, &e);
    let mut clock = Clock {
        since: Instant::now(),
        decode: Duration::ZERO,
        preprocess: Duration::ZERO,
    };
    check_regular_file(path, &clips.access).map_err(|e| fail(Stage::Open, e))?;
    let mut video = Video::open_under(path, &clips.access).map_err(|e| fail(Stage::Open, e))?;
    video
        .limit_pixels(clips.max_pixels)
        .map_err(|e| fail(Stage::Open, e))?;
    let duration = video.meta().duration;
    let units = plan_units(&video, clips).map_err(|e| fail(Stage::Decode, e))?;
    let opened = Piece::Opened {
        path: shown.clone(),
        duration,
    };
    if !emit(opened) {
        return Ok(());
    }
    for (unit, (window, plans)) in units.enumerate() {
        let picks = thumbnail_picks(&plans, clips.thumbnails);
        let mut seen = 0;
        for plan in &plans {
            let clip = read_clip(&mut video, plan, make, clips.thumbnails)
                .map_err(|(stage, e)| fail(stage, e))?;
            clock.decoded_less(clip.shrinking);
            let views = (make.views)(&clip.frames).map_err(|e| fail(Stage::Preprocess, e))?;
            let thumbnails = thumbnails_in(&clip.smalls, seen, &picks)
                .map_err(|e| fail(Stage::Preprocess, e))?;
            seen += clip.frames.len();
            clock.preprocessed();
            let piece = ClipPiece {
                unit,
                window,
                views,
                times: clip.times,
                padded: clip.padded,
                thumbnails,
            };
            if !emit(Piece::Clip(piece)) {
                return Ok(());
            }
            // Waiting for the runner is neither decoding nor preprocessing.
            clock.lap();
        }
    }
    emit(Piece::Done {
        warnings: video.warnings().to_vec(),
        decode_ms: clock.decode.as_secs_f64() * 1e3,
        preprocess_ms: clock.preprocess.as_secs_f64() * 1e3,
    });
    Ok(())
}

/// Decodes every planned clip of `path` and turns each into views with `make`, all kept (for
/// work that needs an input's views together, such as training).
pub fn prepare<F: Clone, V>(
    path: &Path,
    clips: &ClipSettings,
    make: &MakeViews<'_, F, V>,
) -> Result<Prepared<V>, FileError> {
    let mut prepared = Prepared {
        path: String::new(),
        duration: 0.0,
        warnings: Vec::new(),
        units: Vec::new(),
        decode_ms: 0.0,
        preprocess_ms: 0.0,
    };
    prepare_each(path, clips, make, &mut |piece| {
        prepared.add(piece);
        true
    })?;
    Ok(prepared)
}

/// One clip, each frame shrunk by `make.frame` as soon as it is converted, with a small copy of
/// each kept when thumbnails are wanted.
struct ReadClip<F> {
    frames: Vec<F>,
    /// Thumbnail-sized copies of `frames` (empty unless asked for).
    smalls: Vec<Small>,
    times: Vec<f64>,
    padded: usize,
    /// Time spent shrinking: preprocessing, though it happens while decoding.
    shrinking: Duration,
}

/// A sink that adds the time spent in it to a stopwatch.
struct Timed<'a> {
    sink: &'a mut dyn RowSink,
    spent: &'a mut Duration,
}

impl RowSink for Timed<'_> {
    fn wants(&self, y: u32) -> bool {
        self.sink.wants(y)
    }
    fn rows(&mut self, first: u32, data: &[u8]) {
        let since = Instant::now();
        self.sink.rows(first, data);
        *self.spent += since.elapsed();
    }
}

/// Reads one clip; a failure says whether decoding (which includes the conversion to RGB) or
/// shrinking failed.
fn read_clip<F: Clone, V>(
    video: &mut Video,
    plan: &ClipPlan,
    make: &MakeViews<'_, F, V>,
    thumbnails: Option<ThumbSpec>,
) -> Result<ReadClip<F>, (Stage, anyhow::Error)> {
    let mut first = None;
    let mut shrinking = Duration::ZERO;
    let mut failed = Stage::Decode;
    let mut shrink = |rows: FrameRows<'_>| -> anyhow::Result<(F, Option<Small>)> {
        let size = (rows.height, rows.width);
        let first = *first.get_or_insert(size);
        let since = Instant::now();
        let started = (make.frame)(size, first);
        shrinking += since.elapsed();
        let mut sink = started.inspect_err(|_| failed = Stage::Preprocess)?;
        let mut small =
            thumbnails.map(|t| SmallRows::new(rows.width, rows.height, rows.time, t.height));
        let mut spent = Duration::ZERO;
        {
            let mut resize = Timed {
                sink: sink.as_mut(),
                spent: &mut spent,
            };
            let mut sinks: Vec<&mut dyn RowSink> = vec![&mut resize];
            if let Some(s) = small.as_mut() {
                sinks.push(s);
            }
            // A failure here is the conversion's: the sinks cannot fail.
            rows.feed(&mut sinks)?;
        }
        let since = Instant::now();
        let out = sink.finish().inspect_err(|_| failed = Stage::Preprocess);
        shrinking += spent + since.elapsed();
        Ok((out?, small.map(SmallRows::finish)))
    };
    let clip = video
        .read_clip_with(plan, &mut shrink)
        .map_err(|e| (failed, e))?;
    let (frames, smalls): (Vec<F>, Vec<Option<Small>>) = clip.frames.into_iter().unzip();
    Ok(ReadClip {
        frames,
        smalls: smalls.into_iter().flatten().collect(),
        times: clip.times,
        padded: clip.padded,
        shrinking,
    })
}

/// Which of a unit's frames (counted over its clips) become thumbnails.
fn thumbnail_picks(plans: &[ClipPlan], spec: Option<ThumbSpec>) -> Vec<usize> {
    let frames = plans.iter().map(|p| p.times.len()).sum();
    spec.map_or_else(Vec::new, |t| spread(frames, t.per_unit))
}

/// A unit's window (none for the whole video) and its clips' plans.
type PlannedUnit = (Option<Window>, Vec<ClipPlan>);

/// The clip plans of each unit, made as they are needed: one unit for the whole video, or one
/// per window (at most `clips.max_windows`).
fn plan_units<'a>(
    video: &Video,
    clips: &'a ClipSettings,
) -> anyhow::Result<Box<dyn Iterator<Item = PlannedUnit> + 'a>> {
    let (duration, fps) = (video.meta().duration, video.native_fps());
    Ok(match clips.windows {
        Some(w) => {
            check_windows(duration, w, clips.max_windows)?;
            Box::new(windows(duration, w).map(move |win| {
                let plans = plan_clips(win.start, win.end, fps, &clips.spec);
                (Some(win), plans)
            }))
        }
        None => Box::new(std::iter::once((
            None,
            plan_clips(0.0, duration, fps, &clips.spec),
        ))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(length: f64, hop: f64) -> WindowSpec {
        WindowSpec { length, hop }
    }

    fn spans(v: impl Iterator<Item = Window>) -> Vec<[f64; 2]> {
        v.map(Into::into).collect()
    }

    #[test]
    fn too_many_windows_are_refused_before_any_is_made() {
        assert!(check_windows(10.0, w(4.0, 4.0), 3).is_ok());
        let e = check_windows(10.0, w(4.0, 4.0), 2).unwrap_err().to_string();
        assert!(
            e.contains("3 windows") && e.contains("--max-windows"),
            "{e}"
        );
        // A last timestamp 10^9 s away: counted up to the cap, not planned.
        let t0 = std::time::Instant::now();
        let e = check_windows(1e9, w(4.0, 4.0), 10_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("250000000 windows"), "{e}");
        assert!(t0.elapsed().as_secs() < 1);
        assert_eq!(windows(1e9, w(4.0, 4.0)).take(5).count(), 5);
    }

    #[test]
    fn windows_cover_the_video() {
        assert_eq!(
            spans(windows(10.0, w(4.0, 4.0))),
            vec![[0.0, 4.0], [4.0, 8.0], [8.0, 10.0]]
        );
        assert_eq!(
            spans(windows(8.0, w(4.0, 4.0))),
            vec![[0.0, 4.0], [4.0, 8.0]]
        );
        assert_eq!(spans(windows(3.0, w(4.0, 2.0))), vec![[0.0, 3.0]]);
        assert_eq!(
            spans(windows(6.0, w(4.0, 2.0))),
            vec![[0.0, 4.0], [2.0, 6.0]]
        );
    }
}
