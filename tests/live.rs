//! Inputs that are not plain files, and what opening any input may do: URLs, `pipe:`, the
//! protocol and demuxer allow-lists. Everything runs on the loopback interface, with the ffmpeg
//! command-line tool as the sender.

use crate::support::{expect_err, ffmpeg, predict, scratch};
use std::path::{Path, PathBuf};

/// A 2-second MPEG-TS clip and, beside it, the hostile inputs that name it: an HLS playlist
/// and an ffconcat list, each saved as `.mp4`.
fn hostile(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch(name);
    let seg = dir.join("seg.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=128x96:rate=10",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "mpegts",
        seg.to_str().unwrap(),
    ]);
    let hls = dir.join("upload.mp4");
    std::fs::write(
        &hls,
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile://{}\n#EXT-X-ENDLIST\n",
            seg.display()
        ),
    )
    .unwrap();
    let list = dir.join("list.mp4");
    std::fs::write(&list, "ffconcat version 1.0\nfile seg.ts\n").unwrap();
    (seg, hls, list)
}

/// The one record of a run that must fail on `input`, with its error text.
fn refused(input: &str, extra: &[&str]) -> String {
    let mut args = vec!["-f", "jsonl", "-q", "-k", "1"];
    args.extend(extra);
    args.push(input);
    let run = predict(&args).expect_code(1);
    let records = run.records();
    assert_eq!(records.len(), 1, "{}", run.stdout());
    let e = expect_err(&records[0]);
    assert_eq!(e.path, input);
    e.error.clone()
}

#[test]
fn playlists_and_lists_saved_as_media_are_refused() {
    let (seg, hls, list) = hostile("live-hostile");
    let hls_err = refused(hls.to_str().unwrap(), &[]);
    assert!(
        hls_err.contains("HLS playlist") && hls_err.contains("--allow-playlists"),
        "{hls_err}"
    );
    let list_err = refused(list.to_str().unwrap(), &[]);
    assert!(
        list_err.contains("ffconcat list") && list_err.contains("--allow-playlists"),
        "{list_err}"
    );
    // The media file itself opens; and with --allow-playlists the user may follow them.
    let dir = seg.parent().unwrap();
    let run = predict(&["-f", "jsonl", "-q", "--allow-playlists"])
        .args([&seg, &hls, &list])
        .current_dir(dir)
        .ok();
    assert_eq!(run.results().len(), 3);
}

#[test]
fn file_reading_protocols_are_refused() {
    let (seg, _, _) = hostile("live-protocols");
    let seg = seg.to_str().unwrap();
    for input in [
        format!("concat:{seg}|{seg}"),
        format!("subfile:,,start,0,end,0,:{seg}"),
        format!("file:{seg}"),
    ] {
        let err = refused(&input, &[]);
        let scheme = input.split(':').next().unwrap();
        assert!(
            err.contains(&format!("the {scheme}: protocol is not allowed"))
                && err.contains("--protocols"),
            "{input}: {err}"
        );
    }
}

trait InDir {
    fn current_dir(&mut self, dir: &Path) -> &mut Self;
}

impl InDir for crate::support::Vidcls {
    fn current_dir(&mut self, dir: &Path) -> &mut Self {
        self.command().current_dir(dir);
        self
    }
}

/// `python -m http.server` on a free loopback port serving `dir`; killed when dropped.
pub struct HttpServer {
    child: std::process::Child,
    pub port: u16,
}

impl HttpServer {
    pub fn serve(dir: &Path) -> HttpServer {
        use std::io::BufRead;
        let mut child = crate::support::python()
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python -m http.server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split("port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        HttpServer { child, port }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn finite_urls_and_pipes_work_with_every_predict_mode() {
    let (seg, _, _) = hostile("live-finite");
    let dir = seg.parent().unwrap();
    let mp4 = dir.join("a.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=128x96:rate=10",
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        mp4.to_str().unwrap(),
    ]);
    let server = HttpServer::serve(dir);
    let url = server.url("a.mp4");
    let local = predict(&[
        "-f",
        "jsonl",
        "-q",
        "--timeline",
        "--window",
        "1",
        "--all-scores",
    ])
    .arg(&mp4)
    .ok()
    .results();
    let remote = predict(&[
        "-f",
        "jsonl",
        "-q",
        "--timeline",
        "--window",
        "1",
        "--all-scores",
    ])
    .arg(&url)
    .ok()
    .results();
    assert_eq!(remote.len(), 4);
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(r.path, url);
        assert_eq!((&l.scores, &l.frame_times), (&r.scores, &r.frame_times));
    }
    let whole = predict(&["-f", "jsonl", "-q"]).arg(&url).ok().results();
    assert_eq!(whole.len(), 1);
    let segs = predict(&[
        "-f",
        "jsonl",
        "-q",
        "--segments",
        "--window",
        "1",
        "--seg-on",
        "0",
        "--seg-off",
        "0",
    ])
    .arg(&url)
    .ok()
    .records();
    assert!(!segs.is_empty());
    let missing = refused(&server.url("nothing.mp4"), &[]);
    assert!(missing.contains("404"), "{missing}");
    // pipe: is a byte stream on stdin (and `-` still means paths on stdin).
    let mut cmd = predict(&["-f", "jsonl", "-q", "pipe:"]);
    cmd.command().stdin(std::fs::File::open(&seg).unwrap());
    let piped = cmd.ok().results();
    assert_eq!(piped.len(), 1);
    assert_eq!(piped[0].path, "pipe:");
    let direct = predict(&["-f", "jsonl", "-q"]).arg(&seg).ok().results();
    assert_eq!(piped[0].top_k, direct[0].top_k);
}

// ---------------------------------------------------------------------------------------------
// vidcls watch: streams sent in real time by the ffmpeg command-line tool

use crate::support::{fixture, python, root, run_ok, vidcls, Key};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use vidcls::report::{LiveRecord, LiveWindow};

/// The three actions of the stream, in order.
const ACTIONS: [&str; 3] = ["move_left", "zoom_in", "rotate_cw"];
const GENERATOR_ARGS: [&str; 12] = [
    "--n-per-class",
    "1",
    "--labels",
    "move_left",
    "zoom_in",
    "rotate_cw",
    "--size",
    "160x120",
    "--fps",
    "25",
    "--codec",
    "h264",
];

/// (label, start, end) of each action in the stream, in seconds.
type Spans = Vec<(String, f64, f64)>;

/// One clip per action from the motion generator, joined into one H.264 MP4 (keyframe every
/// 10 frames, so a receiver joining late starts soon), and where each action starts and ends.
fn three_actions() -> &'static (PathBuf, Spans) {
    static S: OnceLock<(PathBuf, Spans)> = OnceLock::new();
    S.get_or_init(|| {
        let key = Key::new()
            .args(&GENERATOR_ARGS)
            .args(&["--seed", "7", "concat", "-g", "10"])
            .script("scripts/motion_dataset.py")
            .python()
            .ffmpeg();
        let dir = fixture("live-three-actions", &key, |out| {
            let clips = out.join("clips");
            run_ok(
                python()
                    .arg(root().join("scripts/motion_dataset.py"))
                    .args(GENERATOR_ARGS)
                    .args(["--seed", "7", "--out"])
                    .arg(&clips),
            );
            let mut args: Vec<String> = Vec::new();
            let mut spans = String::new();
            let mut t = 0.0;
            for label in ACTIONS {
                let clip = std::fs::read_dir(clips.join(label))
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .path();
                let out = run_ok(
                    Command::new("ffprobe")
                        .args([
                            "-v",
                            "error",
                            "-show_entries",
                            "format=duration",
                            "-of",
                            "csv=p=0",
                        ])
                        .arg(&clip),
                );
                let d: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                spans.push_str(&format!("{label} {t} {}\n", t + d));
                t += d;
                args.extend(["-i".into(), clip.to_string_lossy().into_owned()]);
            }
            args.extend(
                [
                    "-filter_complex",
                    "[0:v][1:v][2:v]concat=n=3:v=1[v]",
                    "-map",
                    "[v]",
                    "-c:v",
                    "libx264",
                    "-g",
                    "10",
                    "-pix_fmt",
                    "yuv420p",
                ]
                .map(String::from),
            );
            args.push(out.join("three.mp4").to_string_lossy().into_owned());
            ffmpeg(&args);
            std::fs::write(out.join("spans.txt"), spans).unwrap();
        });
        let spans = std::fs::read_to_string(dir.join("spans.txt"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (
                    f[0].to_string(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                )
            })
            .collect();
        (dir.join("three.mp4"), spans)
    })
}

/// Streams run one at a time: they are timed in real time on a shared machine.
fn one_stream_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `ffmpeg -re -i VIDEO -c copy -f mpegts DEST` (a real-time sender).
fn sender(video: &Path, dest: &[&str]) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-re", "-i"])
        .arg(video)
        .args(["-c", "copy", "-f", "mpegts"])
        .args(dest)
        .stdin(Stdio::null());
    cmd
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A record of `watch` and when (since `t0`) its line arrived.
struct Arrived {
    at: f64,
    record: LiveRecord,
}

/// Reads a running `watch`'s JSON Lines as they come; returns the records and the exit code.
fn collect(mut child: Child, t0: Instant) -> (Vec<Arrived>, Option<i32>) {
    let stdout = child.stdout.take().unwrap();
    let mut got = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let record: LiveRecord =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad record {line:?}: {e}"));
        got.push(Arrived {
            at: t0.elapsed().as_secs_f64(),
            record,
        });
    }
    let code = child.wait().unwrap().code();
    (got, code)
}

fn windows(got: &[Arrived]) -> Vec<(f64, &LiveWindow)> {
    got.iter()
        .filter_map(|a| match &a.record {
            LiveRecord::Window(w) => Some((a.at, &**w)),
            _ => None,
        })
        .collect()
}

/// How late the latest record came after its window's end was sent (s), printed for the README.
fn worst_delay(ws: &[(f64, &LiveWindow)], what: &str) -> f64 {
    let worst = ws
        .iter()
        .map(|(at, w)| at - w.result.window.unwrap().end)
        .fold(f64::MIN, f64::max);
    eprintln!(
        "{what}: {} windows, latest record {worst:.2} s after its window's end was sent",
        ws.len()
    );
    worst
}

/// The top label of windows well inside each action is that action (at least 80% of them).
fn labels_follow_the_actions(ws: &[(f64, &LiveWindow)], spans: &[(String, f64, f64)]) {
    for (label, a, b) in spans {
        let inside: Vec<&str> = ws
            .iter()
            .filter_map(|(_, w)| {
                let win = w.result.window.unwrap();
                (win.start >= a + 0.4 && win.end <= b - 0.4)
                    .then(|| w.result.top_k[0].label.as_str())
            })
            .collect();
        let right = inside.iter().filter(|l| *l == label).count();
        assert!(
            !inside.is_empty() && right * 5 >= inside.len() * 4,
            "{label} ({a:.2}-{b:.2} s): {inside:?}"
        );
    }
}

fn watch(args: &[&str]) -> Command {
    let mut v = vidcls(&[
        "watch", "-f", "jsonl", "-k", "1", "--window", "0.8", "--hop", "0.4",
    ]);
    v.args(args);
    let mut cmd = std::mem::replace(v.command(), Command::new("true"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    cmd
}

/// How late a record may come after the end of its window's frames were sent (seconds):
/// demuxing, sampling, one forward pass and the sender's own start.
const BOUND: f64 = 2.0;

#[test]
fn watch_labels_a_udp_stream_as_it_is_sent() {
    let (video, spans) = three_actions();
    let _one = one_stream_at_a_time();
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}");
    let child = watch(&[&url, "--no-reconnect", "--stall", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    let mut send = sender(video, &[&url]).spawn().unwrap();
    let (got, code) = collect(child, t0);
    let sent_for = send.wait().map(|_| t0.elapsed().as_secs_f64()).unwrap();
    assert_eq!(code, Some(0));
    let ws = windows(&got);
    assert!(ws.len() >= 15, "{} windows", ws.len());
    // Records come while the sender still sends, each soon after its frames were sent.
    assert!(
        ws[0].0 < sent_for - 3.0,
        "first record at {:.2} s, sender done at {sent_for:.2} s",
        ws[0].0
    );
    let worst = worst_delay(&ws, "udp");
    assert!(
        worst <= BOUND,
        "a record came {worst:.2} s after its window ended"
    );
    assert!(ws
        .iter()
        .all(|(_, w)| w.dropped == 0 && w.wall_time > 1.7e9));
    labels_follow_the_actions(&ws, spans);
}

#[test]
fn watch_labels_an_http_stream_and_a_pipe() {
    let (video, spans) = three_actions();
    let _one = one_stream_at_a_time();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/live.ts");
    let mut send = sender(video, &["-listen", "1", &url]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let t0 = Instant::now();
    let child = watch(&[&url, "--no-reconnect"]).spawn().unwrap();
    let (got, code) = collect(child, t0);
    let _ = send.wait();
    assert_eq!(code, Some(0));
    let ws = windows(&got);
    let worst = worst_delay(&ws, "http");
    // The sender starts its clock when vidcls connects, after vidcls has loaded its model.
    assert!(
        worst <= BOUND + 1.0,
        "a record came {worst:.2} s after its window ended"
    );
    labels_follow_the_actions(&ws, spans);

    // ffmpeg ... -f mpegts - | vidcls watch pipe:
    let mut send = sender(video, &["-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cmd = watch(&["pipe:", "--segments"]);
    cmd.stdin(send.stdout.take().unwrap());
    let t0 = Instant::now();
    let (got, code) = collect(cmd.spawn().unwrap(), t0);
    let _ = send.wait();
    assert_eq!(code, Some(0), "a stream that ends ends the run");
    let ws = windows(&got);
    assert!(ws.iter().all(|(_, w)| w.result.path == "pipe:"));
    labels_follow_the_actions(&ws, spans);
    segments_follow_the_actions(&got, spans);
}

/// `--segments`: each action has a segment of its label over the action's middle, and the
/// first action's segment is written when it closes, before the stream's last window.
fn segments_follow_the_actions(got: &[Arrived], spans: &[(String, f64, f64)]) {
    let segments: Vec<(usize, &vidcls::report::Segment)> = got
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match &a.record {
            LiveRecord::Segment(s) => Some((i, s)),
            _ => None,
        })
        .collect();
    let shown: Vec<(&str, f64, f64)> = segments
        .iter()
        .map(|(_, s)| (s.label.as_str(), s.start, s.end))
        .collect();
    eprintln!("segments: {shown:?}");
    let last_window = got
        .iter()
        .rposition(|a| matches!(a.record, LiveRecord::Window(_)))
        .unwrap();
    for (n, (label, a, b)) in spans.iter().enumerate() {
        let middle = (a + b) / 2.0;
        let found = segments
            .iter()
            .find(|(_, s)| &s.label == label && s.start <= middle && middle <= s.end);
        let Some((at, _)) = found else {
            panic!("no {label} segment over {middle:.2} s: {shown:?}")
        };
        if n == 0 {
            assert!(
                *at < last_window,
                "the {label} segment came only at the end"
            );
        }
    }
}

#[test]
fn watch_reconnects_and_reports_the_gap() {
    let (video, _) = three_actions();
    let _one = one_stream_at_a_time();
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}");
    let child = watch(&[&url, "--stall", "1", "--duration", "14"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    let mut first = sender(video, &[&url]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    first.kill().unwrap();
    let _ = first.wait();
    std::thread::sleep(Duration::from_secs(3));
    let mut second = sender(video, &[&url]).spawn().unwrap();
    let (got, code) = collect(child, t0);
    let _ = second.kill();
    let _ = second.wait();
    assert_eq!(code, Some(0));
    let gap = got
        .iter()
        .position(|a| matches!(a.record, LiveRecord::Gap(_)))
        .expect("a gap record");
    let LiveRecord::Gap(g) = &got[gap].record else {
        unreachable!()
    };
    assert!(g.gap_s >= 1.0 && g.reconnects >= 1, "{g:?}");
    let before = windows(&got[..gap]);
    let after = windows(&got[gap..]);
    assert!(
        before.len() >= 3 && after.len() >= 3,
        "{} before, {} after",
        before.len(),
        after.len()
    );
    // Stream times go on past the gap.
    let last_before = before.last().unwrap().1.result.window.unwrap().end;
    assert!(after[0].1.result.window.unwrap().start >= last_before);
}

/// Resident memory of a process in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn watch_drops_windows_when_the_model_is_slow() {
    let (video, _) = three_actions();
    let _one = one_stream_at_a_time();
    let dir = scratch("live-slow");
    // The three actions twice over: about 15 s of stream.
    let long = dir.join("long.mp4");
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("file '{0}'\nfile '{0}'\n", video.display())).unwrap();
    ffmpeg(&[
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        list.to_str().unwrap(),
        "-c",
        "copy",
        long.to_str().unwrap(),
    ]);
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}");
    let delay_ms = 1200.0;
    let child = watch(&[
        &url,
        "--no-reconnect",
        "--stall",
        "2",
        "--forward-delay-ms",
        "1200",
    ])
    .spawn()
    .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    let mut send = sender(&long, &[&url]).spawn().unwrap();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        while let Some(kb) = rss_kb(pid) {
            samples.push((t0.elapsed().as_secs_f64(), kb));
            std::thread::sleep(Duration::from_millis(250));
        }
        samples
    });
    let (got, code) = collect(child, t0);
    let _ = send.wait();
    let samples = sampler.join().unwrap();
    assert_eq!(code, Some(0));
    let ws = windows(&got);
    let dropped = ws.last().unwrap().1.dropped;
    // Windows start every 0.4 s and each takes over 1.2 s: most are dropped, none waits long.
    assert!(
        dropped as usize >= ws.len(),
        "{dropped} dropped, {} written",
        ws.len()
    );
    // No queue: a window waits for at most the pass already running, then its own. The passes
    // are timed as they ran (the delay plus the model), so a loaded machine moves the bound too.
    let worst_lag = ws.iter().map(|(_, w)| w.lag_s).fold(0.0, f64::max);
    let longest_pass = ws
        .iter()
        .map(|(_, w)| w.result.timings.model_ms / 1e3)
        .fold(0.0, f64::max);
    eprintln!(
        "slow model: {} written, {dropped} dropped, worst lag {worst_lag:.2} s, longest pass {longest_pass:.2} s",
        ws.len()
    );
    assert!(longest_pass >= delay_ms / 1e3, "pass {longest_pass:.2} s");
    assert!(
        worst_lag <= 2.0 * longest_pass + 0.5,
        "lag {worst_lag:.2} s, longest pass {longest_pass:.2} s"
    );
    let late = ws
        .iter()
        .map(|(at, w)| at - w.result.window.unwrap().end)
        .fold(f64::MIN, f64::max);
    eprintln!("slow model: latest record {late:.2} s after its window's end was sent");
    assert!(
        late <= 2.0 * longest_pass + BOUND,
        "a record came {late:.2} s after its window"
    );
    // Memory flat: between the first record (the first forward pass made its own allocations,
    // however late a loaded machine runs it) and the last (the process's exit touches pages of
    // its libraries' own, which a sample may catch), the second half of the run holds no more
    // than the first plus a little.
    let (warm, done) = (ws.first().unwrap().0, ws.last().unwrap().0);
    let after: Vec<&(f64, u64)> = samples
        .iter()
        .filter(|s| s.0 >= warm && s.0 <= done)
        .collect();
    assert!(
        after.len() >= 8,
        "{} memory samples after the first record",
        after.len()
    );
    let half = after.len() / 2;
    let early = after[..half].iter().map(|s| s.1).max().unwrap();
    let late = after[half..].iter().map(|s| s.1).max().unwrap();
    eprintln!("slow model: resident memory {early} kB in the first half, {late} kB in the second");
    assert!(
        late <= early + 20_000,
        "memory grew from {early} kB to {late} kB"
    );
}

/// Drop by lag, not by slot: a pipe or a file that delivers faster than real time waits for
/// the model (even a slower one) instead of losing windows.
#[test]
fn watch_keeps_every_window_of_a_source_faster_than_real_time() {
    let (video, _) = three_actions();
    let _one = one_stream_at_a_time();
    let t0 = Instant::now();
    let (got, code) = collect(watch(&[video.to_str().unwrap()]).spawn().unwrap(), t0);
    assert_eq!(code, Some(0));
    let whole = windows(&got);
    // About 7.7 s, windows of 0.8 s every 0.4 s.
    assert!(whole.len() >= 15, "{} windows of a file", whole.len());
    // ffmpeg -i VIDEO -c copy -f mpegts - | vidcls watch pipe: (no -re: all at once), with a
    // model slower than the pipe.
    let mut send = Command::new("ffmpeg");
    send.args(["-nostdin", "-v", "error", "-i"])
        .arg(video)
        .args(["-c", "copy", "-f", "mpegts", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut send = send.spawn().unwrap();
    let mut cmd = watch(&["pipe:", "--forward-delay-ms", "20"]);
    cmd.stdin(send.stdout.take().unwrap());
    let (got, code) = collect(cmd.spawn().unwrap(), t0);
    let _ = send.wait();
    assert_eq!(code, Some(0));
    let piped = windows(&got);
    for (what, ws) in [("file", &whole), ("pipe", &piped)] {
        let dropped = ws.last().map_or(0, |(_, w)| w.dropped);
        assert_eq!(dropped, 0, "{what}: {dropped} windows dropped");
    }
    assert_eq!(piped.len(), whole.len());
}

#[test]
fn watch_capture_devices_go_through_their_input_format() {
    // No camera here: the v4l2 demuxer (libavdevice, loaded at run time) is found and fails to
    // open the device; an unknown format is named in the error.
    let run = vidcls(&[
        "watch",
        "-f",
        "jsonl",
        "/dev/video-none",
        "--input-format",
        "v4l2",
    ])
    .expect_code(1);
    let records: Vec<LiveRecord> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let [LiveRecord::Err(e)] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert_eq!(e.path, "/dev/video-none");
    assert_eq!(e.stage, vidcls::report::Stage::Open);
    assert!(e.error.contains("No such file or directory"), "{}", e.error);
    let run = vidcls(&[
        "watch",
        "-f",
        "jsonl",
        "/dev/video-none",
        "--input-format",
        "nosuch",
    ])
    .expect_code(1);
    assert!(
        run.stdout()
            .contains("input format \\\"nosuch\\\" is not in this FFmpeg"),
        "{}",
        run.stdout()
    );
}

#[test]
fn watch_stops_on_sigterm_after_the_record_being_written() {
    let (video, _) = three_actions();
    let _one = one_stream_at_a_time();
    let mut send = sender(video, &["-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cmd = watch(&["pipe:"]);
    cmd.stdin(send.stdout.take().unwrap());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        let _: LiveRecord = serde_json::from_str(&line).unwrap();
    }
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let code = child.wait().unwrap().code();
    let _ = send.kill();
    let _ = send.wait();
    assert_eq!(code, Some(143));
    // Whatever came after the signal is whole records.
    for line in lines {
        let line = line.unwrap();
        let _: LiveRecord = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    }
}
