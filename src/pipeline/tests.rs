//! The pipeline with a fake decoder and a fake model: ordering, batch composition, time limits
//! and error records, without FFmpeg or a TorchScript file.

use super::*;
use crate::report::Stage;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A view of the fake decoder: (input index, view number).
type View = (usize, usize);

/// Records every batch; fails a batch holding a view of `poison`.
struct FakeModel {
    batches: Mutex<Vec<Vec<View>>>,
    poison: Option<usize>,
}

impl FakeModel {
    fn new(poison: Option<usize>) -> FakeModel {
        FakeModel {
            batches: Mutex::new(Vec::new()),
            poison,
        }
    }
}

impl Forward for FakeModel {
    type View = View;
    fn run_batch(&self, views: &[View]) -> Result<Vec<Vec<f64>>> {
        self.batches.lock().unwrap().push(views.to_vec());
        if views.iter().any(|v| Some(v.0) == self.poison) {
            anyhow::bail!("poisoned batch");
        }
        Ok(views
            .iter()
            .map(|&(i, v)| vec![i as f64, v as f64])
            .collect())
    }
}

/// Input `i` has `i % 3 + 1` views and takes a few milliseconds that vary with `i`, so workers
/// finish out of order. Paths named `fail*` fail to open; `hang*` hang for a minute.
fn fake_whole(index: usize, path: &Path) -> Result<Prepared<View>, FileError> {
    let name = path.to_string_lossy().into_owned();
    if name.starts_with("hang") {
        std::thread::sleep(Duration::from_secs(60));
    }
    std::thread::sleep(Duration::from_millis(((index * 7) % 5) as u64 * 3));
    if name.starts_with("fail") {
        return Err(FileError::new(name, Stage::Open, &anyhow::anyhow!("no")));
    }
    let views = (0..index % 3 + 1).map(|v| (index, v)).collect();
    Ok(Prepared {
        path: name,
        duration: 1.0,
        warnings: vec![],
        units: vec![Unit {
            window: None,
            views,
            frame_times: vec![],
            clips: 1,
            padded: 0,
            thumbnails: vec![],
        }],
        decode_ms: 0.0,
        preprocess_ms: 0.0,
    })
}

/// [`fake_whole`] as pieces: opened, one view per clip, done.
fn fake_prepare() -> Box<StreamFn<Piece<View>>> {
    Box::new(|index: usize, path: &Path, emit| {
        let p = fake_whole(index, path)?;
        emit(Piece::Opened {
            path: p.path,
            duration: p.duration,
        });
        for v in p.units.into_iter().flat_map(|u| u.views) {
            emit(Piece::Clip(clip(0, vec![v])));
        }
        emit(done());
        Ok(())
    })
}

fn clip(unit: usize, views: Vec<View>) -> ClipPiece<View> {
    ClipPiece {
        unit,
        window: None,
        views,
        times: vec![],
        padded: 0,
        thumbnails: vec![],
    }
}

fn done() -> Piece<View> {
    Piece::Done {
        warnings: vec![],
        decode_ms: 0.0,
        preprocess_ms: 0.0,
    }
}

/// Keeps every outcome; says "pipe closed" after `stop_after` inputs.
#[derive(Default)]
struct Collect {
    got: Arc<Mutex<Vec<Outcome>>>,
    stop_after: Option<usize>,
    finished: bool,
}

impl Consumer for Collect {
    fn take(&mut self, outcome: Outcome) -> Result<bool> {
        let mut got = self.got.lock().unwrap();
        got.push(outcome);
        Ok(self.stop_after.is_none_or(|n| got.len() < n))
    }
    fn finish(&mut self) -> Result<bool> {
        self.finished = true;
        Ok(true)
    }
}

fn jobs(names: &[&str]) -> Vec<Job> {
    names.iter().map(|n| Ok(PathBuf::from(n))).collect()
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v{i}")).collect()
}

fn settings(threads: usize, batch_size: usize, timeout_s: f64) -> RunSettings {
    RunSettings {
        threads,
        batch_size,
        timeout: Duration::from_secs_f64(timeout_s),
        ahead: 2,
    }
}

fn run_fake(
    jobs: Vec<Job>,
    model: &FakeModel,
    s: &RunSettings,
    stop_after: Option<usize>,
) -> (Vec<Outcome>, RunStats, bool) {
    let mut c = Collect {
        stop_after,
        ..Collect::default()
    };
    let stats = run(jobs, fake_prepare(), model, &mut c, s).unwrap();
    let got = std::mem::take(&mut *c.got.lock().unwrap());
    (got, stats, c.finished)
}

fn path_of(o: &Outcome) -> &str {
    match o {
        Ok(s) => &s.path,
        Err(e) => &e.path,
    }
}

#[test]
fn outcomes_come_in_input_order_with_every_row() {
    let names = numbered(30);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for threads in [1, 4] {
        let model = FakeModel::new(None);
        let (got, stats, finished) =
            run_fake(jobs(&names), &model, &settings(threads, 4, 60.0), None);
        assert!(finished && stats.ending == Ending::Complete);
        let order: Vec<&str> = got.iter().map(path_of).collect();
        assert_eq!(order, names, "threads {threads}");
        for (i, o) in got.iter().enumerate() {
            let s = o.as_ref().unwrap();
            let want: Vec<Vec<f64>> = (0..i % 3 + 1).map(|v| vec![i as f64, v as f64]).collect();
            assert_eq!(s.units[0].rows, want, "input {i}");
        }
        assert_eq!(stats.views, (0..30).map(|i| i % 3 + 1).sum::<usize>());
    }
}

#[test]
fn batches_are_full_and_in_view_order_whatever_the_threads() {
    let names = numbered(17);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let all_views: Vec<View> = (0..17)
        .flat_map(|i| (0..i % 3 + 1).map(move |v| (i, v)))
        .collect();
    let want: Vec<Vec<View>> = all_views.chunks(5).map(<[View]>::to_vec).collect();
    for threads in [1, 3] {
        let model = FakeModel::new(None);
        run_fake(jobs(&names), &model, &settings(threads, 5, 60.0), None);
        assert_eq!(*model.batches.lock().unwrap(), want, "threads {threads}");
    }
}

#[test]
fn failures_become_records_in_place() {
    let mut names: Vec<Job> = jobs(&["v0", "fail1", "v2"]);
    names.push(Err(FileError::new(
        "gone",
        Stage::Input,
        &anyhow::anyhow!("missing"),
    )));
    names.extend(jobs(&["v4"]));
    let model = FakeModel::new(None);
    let (got, _, _) = run_fake(names, &model, &settings(2, 2, 60.0), None);
    let stages: Vec<Option<Stage>> = got
        .iter()
        .map(|o| o.as_ref().err().map(|e| e.stage))
        .collect();
    assert_eq!(
        stages,
        [None, Some(Stage::Open), None, Some(Stage::Input), None]
    );
    assert_eq!(path_of(&got[3]), "gone");
}

#[test]
fn a_failed_batch_fails_only_the_inputs_in_it() {
    // Views: v0 -> 1, v1 -> 2, v2 -> 3, v3 -> 1, v4 -> 2; batch 3: [v0 v1 v1] [v2 v2 v2] [v3 v4 v4]
    let names = numbered(5);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let model = FakeModel::new(Some(2));
    let (got, _, _) = run_fake(jobs(&names), &model, &settings(1, 3, 60.0), None);
    let failed: Vec<bool> = got.iter().map(Result::is_err).collect();
    assert_eq!(failed, [false, false, true, false, false]);
    assert_eq!(got[2].as_ref().unwrap_err().stage, Stage::Model);
}

#[test]
fn a_hanging_input_is_given_up_and_the_rest_go_on() {
    let model = FakeModel::new(None);
    let t0 = std::time::Instant::now();
    let (got, _, _) = run_fake(
        jobs(&["v0", "hang1", "v2", "v3"]),
        &model,
        &settings(1, 2, 0.3),
        None,
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "waited for the hanging input"
    );
    let e = got[1].as_ref().unwrap_err();
    assert!(
        e.stage == Stage::Decode && e.error.contains("gave up"),
        "{e:?}"
    );
    assert!(got[0].is_ok() && got[2].is_ok() && got[3].is_ok());
}

#[test]
fn a_closed_pipe_stops_the_run() {
    let names = numbered(40);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let model = FakeModel::new(None);
    let (got, stats, finished) = run_fake(jobs(&names), &model, &settings(2, 2, 60.0), Some(3));
    assert_eq!(stats.ending, Ending::ClosedPipe);
    assert_eq!(got.len(), 3);
    assert!(!finished);
}

#[test]
fn prepare_in_order_hands_results_over_in_order() {
    let names: Vec<Job> = jobs(&["v0", "fail1", "v2", "hang3", "v4", "v5"]);
    let mut seen = Vec::new();
    prepare_in_order(names, Box::new(fake_whole), &settings(3, 1, 0.3), |i, r| {
        seen.push((i, r.map(|p| p.units[0].views.len()).map_err(|e| e.stage)));
        true
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            (0, Ok(1)),
            (1, Err(Stage::Open)),
            (2, Ok(3)),
            (3, Err(Stage::Decode)),
            (4, Ok(2)),
            (5, Ok(3)),
        ]
    );
}

/// A worker for inputs of `units` x `per_unit` one-view clips that counts the views it made.
fn counting_prepare(
    units: usize,
    per_unit: usize,
    made: Arc<std::sync::atomic::AtomicUsize>,
) -> Box<StreamFn<Piece<View>>> {
    use std::sync::atomic::Ordering;
    Box::new(move |index: usize, path: &Path, emit| {
        let opened = Piece::Opened {
            path: path.to_string_lossy().into_owned(),
            duration: 1.0,
        };
        if !emit(opened) {
            return Ok(());
        }
        for u in 0..units {
            for v in 0..per_unit {
                made.fetch_add(1, Ordering::SeqCst);
                if !emit(Piece::Clip(clip(u, vec![(index, u * per_unit + v)]))) {
                    return Ok(());
                }
            }
        }
        emit(done());
        Ok(())
    })
}

/// Counts the views made but not yet through the model at each batch.
struct Outstanding {
    made: Arc<std::sync::atomic::AtomicUsize>,
    run: Mutex<(usize, usize)>,
}

impl Forward for Outstanding {
    type View = View;
    fn run_batch(&self, views: &[View]) -> Result<Vec<Vec<f64>>> {
        let mut run = self.run.lock().unwrap();
        run.0 += views.len();
        let waiting = self.made.load(std::sync::atomic::Ordering::SeqCst) - run.0;
        run.1 = run.1.max(waiting);
        Ok(views
            .iter()
            .map(|&(i, v)| vec![i as f64, v as f64])
            .collect())
    }
}

#[test]
fn a_long_input_streams_its_views_to_the_model() {
    // 2000 windows of 5 one-view clips: the model sees them while the worker makes them, so the
    // views waiting stay within the input's queue (2), the batch (3) and the one in the hand.
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let model = Outstanding {
        made: made.clone(),
        run: Mutex::new((0, 0)),
    };
    let mut c = Collect::default();
    let s = settings(2, 3, 60.0);
    let prepare = counting_prepare(2000, 5, made);
    let stats = run(jobs(&["long", "short"]), prepare, &model, &mut c, &s).unwrap();
    let (ran, most_waiting) = *model.run.lock().unwrap();
    assert_eq!((stats.views, ran), (20_000, 20_000));
    assert!(most_waiting <= 2 + 3 + 1, "{most_waiting} views waited");
    let got = c.got.lock().unwrap();
    let long = got[0].as_ref().unwrap();
    assert_eq!(long.units.len(), 2000);
    assert!(long.units.iter().all(|u| u.rows.len() == 5 && u.clips == 5));
    assert_eq!(long.units[1999].rows[4], vec![0.0, 9999.0]);
    assert_eq!(got[1].as_ref().unwrap().units.len(), 2000);
}

#[test]
fn a_failed_batch_stops_the_rest_of_its_input() {
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let model = FakeModel::new(Some(0));
    let mut c = Collect::default();
    let prepare = counting_prepare(1000, 10, made.clone());
    run(
        jobs(&["long", "next"]),
        prepare,
        &model,
        &mut c,
        &settings(1, 4, 60.0),
    )
    .unwrap();
    let got = c.got.lock().unwrap();
    assert_eq!(got[0].as_ref().unwrap_err().stage, Stage::Model);
    assert_eq!(got[1].as_ref().unwrap().units.len(), 1000);
    // The failed input's worker stopped soon after: the next input's 10000 views and a few.
    let made = made.load(std::sync::atomic::Ordering::SeqCst);
    assert!(made < 10_000 + 100, "{made} views made");
}

#[test]
fn a_slow_input_is_given_up_even_while_its_pieces_keep_coming() {
    // A piece every 40 ms (well within the runner's poll), 1.2 s in all, against a 0.3-s limit.
    let prepare: Box<StreamFn<Piece<View>>> = Box::new(|index: usize, path: &Path, emit| {
        let opened = Piece::Opened {
            path: path.to_string_lossy().into_owned(),
            duration: 1.0,
        };
        emit(opened);
        let pieces = if path.starts_with("slow") { 30 } else { 1 };
        for v in 0..pieces {
            std::thread::sleep(Duration::from_millis(40));
            if !emit(Piece::Clip(clip(0, vec![(index, v)]))) {
                return Ok(());
            }
        }
        emit(done());
        Ok(())
    });
    let model = FakeModel::new(None);
    let mut c = Collect::default();
    run(
        jobs(&["slow", "v1"]),
        prepare,
        &model,
        &mut c,
        &settings(1, 1, 0.3),
    )
    .unwrap();
    let got = c.got.lock().unwrap();
    let e = got[0].as_ref().unwrap_err();
    assert!(e.error.contains("--timeout"), "{e:?}");
    assert!(got[1].is_ok());
}
