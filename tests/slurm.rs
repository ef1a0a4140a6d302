//! The README's Slurm job array ("Labelling at scale"), submitted as written to a real one-node
//! cluster that scripts/slurm-local.sh starts (munged, slurmctld, slurmd; as root): the shard
//! files together hold each input exactly once, with the top-1 of one `vidcls predict` run, also
//! when a task is SIGKILLed halfway and requeued. A cluster that cannot start fails the test.

use crate::support::{
    ffmpeg, fixture, lavfi_video, predict, read_jsonl, root, run_ok, scratch, Key,
};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use vidcls::inputs::Shard;
use vidcls::report::Record;

/// 16 small .mp4 videos of differing motion (v00.mp4 ... v15.mp4), copied into one folder (the
/// script `find`s them).
fn videos(dir: &Path) -> PathBuf {
    let sources = [
        "testsrc=size=160x120:rate=25",
        "testsrc2=size=128x96:rate=25",
        "mandelbrot=size=96x96:rate=25",
        "smptebars=size=176x144:rate=25",
        "rgbtestsrc=size=120x90:rate=25",
        "life=size=96x96:rate=25:mold=10",
        "cellauto=size=128x96:rate=25",
        "testsrc=size=160x120:rate=25,scroll=h=0.02",
        "testsrc2=size=128x96:rate=25,scroll=v=0.03",
        "testsrc=size=160x120:rate=25,rotate=a=t",
        "testsrc2=size=128x96:rate=25,rotate=a=-t",
        "mandelbrot=size=96x96:rate=25,hflip",
        "smptebars=size=176x144:rate=25,scroll=h=-0.02",
        "testsrc=size=160x120:rate=25,zoompan=z=1+0.01*on:d=1:s=160x120",
        "life=size=96x96:rate=25:mold=10,scroll=v=0.02",
        "cellauto=size=128x96:rate=25,vflip",
    ];
    let out = dir.join("videos");
    std::fs::create_dir_all(&out).unwrap();
    for (i, src) in sources.iter().enumerate() {
        let name = format!("v{i:02}.mp4");
        let made = lavfi_video("slurm", &name, src, "2", "libx264");
        std::fs::copy(made, out.join(&name)).unwrap();
    }
    out
}

/// The README's job-array script, byte for byte: the sh block after "A Slurm job array:".
fn readme_script() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let after = readme
        .split_once("A Slurm job array:")
        .expect("README has no \"A Slurm job array:\"")
        .1;
    let body = after.split_once("```sh\n").expect("no sh block after it").1;
    body.split_once("```")
        .expect("unclosed sh block")
        .0
        .to_string()
}

/// A cluster of scripts/slurm-local.sh in target/test-slurm/NAME, stopped on drop (also on
/// panic).
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let dir = root().join("target/test-slurm").join(name);
        local(&["stop"], &dir); // a cluster left by an earlier, killed run of this test
        let _ = std::fs::remove_dir_all(&dir);
        let out = local(&["start"], &dir);
        assert!(
            out.status.success(),
            "the Slurm cluster did not start ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster { dir }
    }

    /// A Slurm client command (sbatch, squeue, scontrol) talking to this cluster.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.dir.join("slurm.conf"));
        c
    }

    /// `CMD ARGS`'s stdout, panicking on failure.
    fn ask(&self, program: &str, args: &[&str]) -> String {
        let out = run_ok(self.cmd(program).args(args));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Submits the README's script as an array of `shards` tasks labelling `videos` into
    /// `labels`, one CPU each (the node has 2); returns the array's job id.
    fn submit(&self, videos: &Path, shards: usize, labels: &Path) -> String {
        let script = labels.join("label.sh");
        std::fs::write(&script, readme_script()).unwrap();
        let bin = Path::new(env!("CARGO_BIN_EXE_vidcls")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let array = format!("--array=1-{shards}");
        let chdir = format!("--chdir={}", labels.display());
        let mut c = self.cmd("sbatch");
        c.args(["--parsable", &array, "--cpus-per-task=1", &chdir])
            .arg(&script)
            .env("PATH", path)
            .env("VIDEOS", videos)
            .env("SHARDS", shards.to_string());
        String::from_utf8_lossy(&run_ok(&mut c).stdout)
            .trim()
            .to_string()
    }

    /// `TASK STATE` lines of an array's tasks, finished ones included.
    fn states(&self, job: &str) -> String {
        self.ask("squeue", &["-h", "-t", "all", "-j", job, "-o", "%i %T"])
    }

    /// Waits (up to `limit`) until `pred` holds for the array's states; panics with them and
    /// the daemons' logs when it does not.
    fn wait(&self, job: &str, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) {
        let t0 = Instant::now();
        loop {
            let states = self.states(job);
            if pred(&states) {
                return;
            }
            if t0.elapsed() > limit {
                let log = std::fs::read_to_string(self.dir.join("slurmctld.log"));
                panic!("job {job}: not {what} after {limit:?}:\n{states}\n{log:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until each of the array's `tasks` tasks has completed (exit 0); fails at once,
    /// with the tasks' output, when one has not.
    fn wait_completed(&self, job: &str, tasks: usize, workdir: &Path) {
        self.wait(job, "completed", Duration::from_secs(90), |s| {
            let done = s.lines().filter(|l| l.ends_with(" COMPLETED")).count();
            let ended = [
                "FAILED",
                "CANCELLED",
                "TIMEOUT",
                "NODE_FAIL",
                "OUT_OF_MEMORY",
            ];
            if s.lines().any(|l| ended.iter().any(|e| l.ends_with(e))) {
                panic!(
                    "job {job}: a task did not complete:\n{s}\n{}",
                    outputs(workdir)
                );
            }
            done == tasks
        });
    }
}

/// The Slurm output files (slurm-*.out) in `dir`, one after the other.
fn outputs(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    files.sort();
    let text = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    files
        .iter()
        .map(|p| format!("--- {}\n{}", p.display(), text(p)))
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = local(&["stop"], &self.dir);
        if !out.status.success() && !std::thread::panicking() {
            panic!(
                "slurm-local.sh stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `scripts/slurm-local.sh ARGS DIR`.
fn local(args: &[&str], dir: &Path) -> Output {
    Command::new(root().join("scripts/slurm-local.sh"))
        .args(args)
        .arg(dir)
        .output()
        .expect("cannot run scripts/slurm-local.sh")
}

/// Top-1 label by path of one `vidcls predict` over the folder's videos.
fn single_run(videos: &Path) -> BTreeMap<String, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(videos)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    top1(predict(&["-f", "jsonl", "-q"]).args(&paths).ok().records())
}

fn top1(records: Vec<Record>) -> BTreeMap<String, String> {
    let mut by_path = BTreeMap::new();
    for r in records {
        let Record::Ok(v) = r else {
            panic!("an error record: {r:?}")
        };
        let label = v.top_k[0].label.clone();
        assert!(
            by_path.insert(v.path.clone(), label).is_none(),
            "{} twice",
            v.path
        );
    }
    by_path
}

/// The records of labels.1.jsonl ... labels.N.jsonl together, by path (each path at most once).
fn shard_union(labels: &Path, shards: usize) -> BTreeMap<String, String> {
    let records = (1..=shards)
        .flat_map(|k| read_jsonl(&labels.join(format!("labels.{k}.jsonl"))))
        .collect();
    top1(records)
}

#[test]
fn readme_job_array_labels_each_input_once() {
    let dir = scratch("slurm-array");
    let videos = videos(&dir);
    let expected = single_run(&videos);
    assert_eq!(expected.len(), 16);
    let cluster = Cluster::start("array");
    let labels = dir.join("labels");
    std::fs::create_dir_all(&labels).unwrap();
    let shards = 4;
    let t0 = Instant::now();
    let job = cluster.submit(&videos, shards, &labels);
    cluster.wait_completed(&job, shards, &labels);
    println!(
        "slurm: {} inputs, {shards} shards (array tasks), wall {:.1} s from sbatch to the last task done",
        expected.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(shard_union(&labels, shards), expected);
}

/// The pid of the `vidcls` that task `task` of array `job` runs on this cluster (read from
/// /proc: its environment names the cluster's slurm.conf, the array and the task).
fn task_vidcls(cluster: &Cluster, job: &str, task: u64) -> Option<u32> {
    let want = [
        format!("SLURM_CONF={}", cluster.dir.join("slurm.conf").display()),
        format!("SLURM_ARRAY_JOB_ID={job}"),
        format!("SLURM_ARRAY_TASK_ID={task}"),
    ];
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        let ours = want.iter().all(|w| vars.contains(&w.as_bytes()));
        (comm.trim() == "vidcls" && ours).then_some(pid)
    })
}

/// A video that takes seconds to decode whatever the number of cores: 20 s of 720p in one GOP
/// (every seek decodes from the start).
fn slow_video() -> PathBuf {
    let args = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=25",
        "-t",
        "20",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "500",
        "-pix_fmt",
        "yuv420p",
    ];
    let key = Key::new().ffmpeg().args(&args);
    let dir = fixture("slurm-slow", &key, |dir| {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = dir.join("slow.mp4");
        all.push(out.as_os_str());
        ffmpeg(&all);
    });
    dir.join("slow.mp4")
}

/// Copies the slow video into `videos` under a name that puts it in the middle of its shard of
/// `n` (at least 2 other inputs before and after it in path order); returns that shard's number
/// and the number of inputs before it.
fn add_slow_video(videos: &Path, n: u64) -> (u64, usize) {
    let others: Vec<PathBuf> = std::fs::read_dir(videos)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for c in 'a'..='z' {
        let path = videos.join(format!("v07{c}.mp4"));
        let k = (1..=n).find(|k| shard(*k, n).contains(&path)).unwrap();
        let mates = others.iter().filter(|p| shard(k, n).contains(p));
        let before = mates.clone().filter(|p| **p < path).count();
        if before >= 2 && mates.count() - before >= 2 {
            std::fs::copy(slow_video(), &path).unwrap();
            return (k, before);
        }
    }
    panic!("no name puts the slow video in the middle of a shard");
}

fn shard(k: u64, n: u64) -> Shard {
    format!("{k}/{n}").parse().unwrap()
}

/// SIGKILLs task `task`'s vidcls once `out` holds `lines` records; returns the records it had.
/// Panics when the task ends first (then it was too fast to be caught halfway).
fn kill_after_lines(cluster: &Cluster, job: &str, task: u64, out: &Path, lines: usize) -> usize {
    let t0 = Instant::now();
    let count = || std::fs::read_to_string(out).map_or(0, |s| s.matches('\n').count());
    loop {
        if count() >= lines {
            if let Some(pid) = task_vidcls(cluster, job, task) {
                run_ok(Command::new("kill").args(["-KILL", &pid.to_string()]));
                return count();
            }
        }
        let states = cluster.states(job);
        assert!(
            !states.contains(&format!("{job}_{task} COMPLETED")),
            "task {task} finished before it was killed ({} records): {states}",
            count()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "task {task}: {states}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn killed_and_requeued_task_resumes_its_shard() {
    let dir = scratch("slurm-requeue");
    let videos = videos(&dir);
    let (k, before) = add_slow_video(&videos, 2);
    let expected = single_run(&videos);
    assert_eq!(expected.len(), 17);
    let cluster = Cluster::start("requeue");
    let labels = dir.join("labels");
    std::fs::create_dir_all(&labels).unwrap();
    let t0 = Instant::now();
    let job = cluster.submit(&videos, 2, &labels);
    // Killed while it decodes the slow video, the records before it written.
    let file = labels.join(format!("labels.{k}.jsonl"));
    let at_kill = kill_after_lines(&cluster, &job, k, &file, before);
    let task = format!("{job}_{k}");
    cluster.wait(&job, "failed", Duration::from_secs(30), |s| {
        s.contains(&format!("{task} FAILED"))
    });
    cluster.ask("scontrol", &["requeue", &task]);
    cluster.wait_completed(&job, 2, &labels);
    let show = cluster.ask("scontrol", &["show", "job", &task]);
    assert!(show.contains("Restarts=1"), "{show}");
    let total = read_jsonl(&file).len();
    assert!(
        at_kill < total,
        "killed at {at_kill} of {total} records: not halfway"
    );
    println!(
        "slurm requeue: {} inputs, 2 shards, task {k} SIGKILLed at {at_kill} of {total} records \
         and requeued, wall {:.1} s from sbatch to the last task done",
        expected.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(shard_union(&labels, 2), expected);
}
