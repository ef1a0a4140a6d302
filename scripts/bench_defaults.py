#!/usr/bin/env python3
"""What the automatic defaults and the per-frame resize give, measured with the release binary.

1. Frames of 10000 x 10000 (3 frames of MJPEG): peak RSS and wall time of `vidcls predict`
   with --max-pixels raised, and the record of the default run (refused).
2. Default flags (`--batch-size auto --precision auto`) against the defaults before them
   (`--batch-size 8 --precision fp32`), on the built-in motion model and on an r2plus1d_18
   export (`--r2plus1d CONFIG`, from `scripts/export_models.py --random-init --seed 0
   --frames 16 r2plus1d_18`): videos/s from `--summary-json`, best of `--runs` alternating
   runs, and the `ran` field of the records (what auto chose).

3. Decoding with non-reference frames dropped: the ffmpeg CLI decoding the corpus whole,
   single-threaded, with `-skip_frame default` and `-skip_frame noref` (CPU seconds), and the
   share of B-frames (ffprobe); with `--baseline-rev REV`, `vidcls predict` (default motion
   model) built at REV against this build, which drops the non-reference frames no sampled
   time takes: CPU seconds per video from `/usr/bin/time` (one process on all the files of a
   group, start-up and model loading included, over the files), videos/s from
   `--summary-json`, runs alternating, medians; and whether the two builds' records name the
   same labels with the same scores and frame times.

4. Decoding and preprocessing alone on Kinetics configs (`--preprocess-only CONFIG...`, with
   `--baseline-rev REV`): part 3's comparison with a stand-in model that only averages its input
   in place of each config's model (`vbench.stand_in`), fp32, on 5-s 320x240 and 1280x720 clips.

5. One video with start-up (`--startup-only CONFIG...`, with `--baseline-rev REV`): `vidcls
   predict -m CONFIG` on one 5-s 320x240 clip, no other flag, the whole process's wall and CPU
   seconds, the baseline build against this one.

With `--baseline-rev REV`, parts 1 and 3 also run vidcls built at git revision REV (its files
from `git archive` under target/bench-defaults/, its build cached by REV); `--baseline-what
TEXT` says in part 1's text what that revision did differently.

Part 1 also says where the memory goes: the peak of `vidcls --version` (the process with
libtorch and the libraries it links, no model), the refused run (plus the model, no frame
decoded), and the resident memory of the refused run by mapping (libtorch's CUDA libraries,
libtorch_cpu, the rest of the libraries, anonymous memory), from /proc/PID/smaps sampled every
20 ms (the sample with the most resident memory), and the raised run with thumbnails
(`-f html`).

Usage: scripts/bench_defaults.py --r2plus1d CONFIG [--runs N] [--baseline-rev REV] [--write]
       scripts/bench_defaults.py --memory-only [--baseline-rev REV] [--write]
       scripts/bench_defaults.py --decode-only --baseline-rev REV [--runs N] [--write]
       scripts/bench_defaults.py --preprocess-only CONFIG... --baseline-rev REV [--runs N] [--write]
       scripts/bench_defaults.py --startup-only CONFIG... --baseline-rev REV [--runs N] [--write]
With --write, the sections between the markers in docs/BENCHMARKS.md are replaced (with
--memory-only, only the memory paragraph between its own markers; with --decode-only, only
part 3's section). Run it under `nice` on a quiet machine; the machine and load are printed
with the tables.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from vbench.common import head_commit, run_timed, write_section  # noqa: E402
VIDCLS = ROOT / "target/release/vidcls"
BEGIN, END = "<!-- bench_defaults.py: begin -->", "<!-- bench_defaults.py: end -->"
DECODE_BEGIN = "<!-- bench_defaults.py decode: begin -->"
DECODE_END = "<!-- bench_defaults.py decode: end -->"
MEM_BEGIN = "<!-- bench_defaults.py memory: begin -->"
MEM_END = "<!-- bench_defaults.py memory: end -->"
PRE_BEGIN = "<!-- bench_defaults.py preprocess: begin -->"
PRE_END = "<!-- bench_defaults.py preprocess: end -->"
START_BEGIN = "<!-- bench_defaults.py startup: begin -->"
START_END = "<!-- bench_defaults.py startup: end -->"


def script_hash():
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def cache_dir():
    d = ROOT / "target/bench-defaults" / script_hash()
    d.mkdir(parents=True, exist_ok=True)
    return d


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def huge_video(d):
    p = d / "huge-10000.avi"
    if not p.exists():
        ffmpeg("-f", "lavfi", "-i", "color=c=red:s=10000x10000", "-frames:v", "3",
               "-c:v", "mjpeg", str(p))
    return p


def corpus(d, n=8, size="320x240"):
    """8 clips of 5 s at `size`, testsrc2 with temporal noise, H.264 veryfast, keyframe every
    2 s (bench.sh's)."""
    out = []
    for i in range(n):
        p = d / (f"clip-{i}.mp4" if size == "320x240" else f"clip-{size}-{i}.mp4")
        if not p.exists():
            ffmpeg("-f", "lavfi", "-i",
                   f"testsrc2=s={size}:r=30:d=5,noise=alls={10 + i}:allf=t",
                   "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60",
                   "-pix_fmt", "yuv420p", str(p))
        out.append(p)
    return out


def long_gop(d, n=4):
    """30 s at 640x360 with x264's defaults (preset medium: keyframe every 250 frames, 3
    B-frames with pyramid), testsrc2 with temporal noise."""
    out = []
    for i in range(n):
        p = d / f"long-gop-{i}.mp4"
        if not p.exists():
            ffmpeg("-f", "lavfi", "-i",
                   f"testsrc2=s=640x360:r=30:d=30,noise=alls={10 + i}:allf=t",
                   "-c:v", "libx264", "-pix_fmt", "yuv420p", str(p))
        out.append(p)
    return out


def baseline_binary(rev):
    """vidcls built at `rev` in its own folder (deps reused from this checkout's target/)."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    wt = ROOT / "target/bench-defaults" / f"base-{sha}"
    binary = wt / "target/release/vidcls"
    if not binary.exists():
        if not wt.exists():
            wt.mkdir(parents=True)
            subprocess.run(f"git archive {sha} | tar -x -C {wt}", shell=True, cwd=ROOT,
                           check=True)
        if not (wt / "target/release").exists():
            (wt / "target").mkdir(exist_ok=True)
            subprocess.run(["cp", "-a", str(ROOT / "target/release"), str(wt / "target/release")],
                           check=True)
        # `git archive` gives the files the commit's time, older than the copied build, which
        # cargo would then take as up to date: the revision's own sources must look newer.
        for f in (wt / "src").rglob("*"):
            f.touch()
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=wt, check=True)
    return sha, binary


def timed(args, binary=VIDCLS):
    """(peak RSS MB, wall s, exit code, stdout, stderr) of `vidcls ARGS` under /usr/bin/time."""
    peak, wall, _, code, out, err = timed_cpu(args, binary)
    return peak, wall, code, out, err


def timed_cpu(args, binary=VIDCLS):
    """`timed`, with the process's CPU seconds (user + system) after the wall time
    (`vbench.common.run_timed`)."""
    t = run_timed([binary, *args])
    if t.rss is None or t.cpu_s is None:
        sys.exit(f"/usr/bin/time gave no figures for vidcls {' '.join(map(str, args))}")
    return t.rss / 2**20, t.wall_s, t.cpu_s, t.rc, t.stdout, t.stderr


def peak_mappings(args, binary=VIDCLS):
    """Resident KB by kind of mapping at the sample of `vidcls ARGS` with the most resident
    memory (/proc/PID/smaps every 20 ms)."""
    p = subprocess.Popen([str(binary), *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    best, best_total = {}, 0
    while p.poll() is None:
        kinds = {}
        name = None
        try:
            text = Path(f"/proc/{p.pid}/smaps").read_text()
        except OSError:
            break
        for line in text.splitlines():
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            elif first == "Rss:":
                kb = int(line.split()[1])
                if name.startswith(("libcu", "libnv", "libtorch_cuda", "libcudnn", "libnccl")):
                    kind = "cuda"
                elif name.startswith("libtorch_cpu"):
                    kind = "torch_cpu"
                elif name.startswith("[") or name in ("", "[anon]"):
                    kind = "anon"
                else:
                    kind = "other"
                kinds[kind] = kinds.get(kind, 0) + kb
        total = sum(kinds.values())
        if total > best_total:
            best, best_total = kinds, total
        time.sleep(0.02)
    p.wait()
    return {k: v / 1024 for k, v in best.items()}


def huge_section(d, baseline, what):
    video = huge_video(d)
    version_peak, _, _, _, _ = timed(["--version"])
    refused_peak, _, code, out, _ = timed(["predict", "-f", "jsonl", str(video)])
    refused = json.loads(out.splitlines()[0])
    mappings = peak_mappings(["predict", "-f", "jsonl", str(video)])
    base = None
    if baseline:
        sha, binary = baseline
        peak, wall, rc, _, err = timed(["predict", "-f", "jsonl", str(video)], binary)
        if rc != 0:
            sys.exit(f"baseline run failed: {err}")
        base = {"rev": sha, "peak_mb": peak, "wall_s": wall, "what": what}
    peak, wall, code2, _, err = timed(["predict", "-f", "jsonl", "--max-pixels", "100000000",
                                       str(video)])
    if code2 != 0:
        sys.exit(f"huge-frame run failed: {err}")
    html_peak, _, code3, _, err = timed(["predict", "-f", "html", "--max-pixels", "100000000",
                                         str(video)])
    if code3 != 0:
        sys.exit(f"huge-frame run with thumbnails failed: {err}")
    probe = json.loads(subprocess.run([str(VIDCLS), "probe", str(video)],
                                      check=True, capture_output=True, text=True).stdout)
    return {
        "file_mb": video.stat().st_size / 1e6,
        "pix_fmt": probe.get("pix_fmt", "?"),
        "version_peak_mb": version_peak,
        "mappings_mb": mappings,
        "html_peak_mb": html_peak,
        "default_exit": code,
        "refused_peak_mb": refused_peak,
        "default_error": refused.get("error", "").replace(str(video), video.name),
        "baseline": base,
        "raised_peak_mb": peak,
        "raised_wall_s": wall,
    }


def rate(model_args, extra, files):
    _, _, code, out, err = timed(["predict", "-f", "jsonl", "-k", "1", "--summary-json",
                                  *model_args, *extra, *map(str, files)])
    if code != 0:
        sys.exit(f"vidcls failed: {err}")
    summary = json.loads(err.strip().splitlines()[-1])
    ran = {json.dumps(json.loads(l).get("ran"), sort_keys=True) for l in out.splitlines()}
    return summary["classified"] / summary["elapsed_s"], sorted(ran)


def defaults_section(models, files, runs):
    rows = []
    for name, model_args in models:
        best = {"defaults": 0.0, "before": 0.0}
        ran = {}
        for _ in range(runs):
            for label, extra in (("defaults", []), ("before", ["-b", "8", "--precision", "fp32"])):
                r, what = rate(model_args, extra, files)
                best[label] = max(best[label], r)
                ran[label] = what
        rows.append({"model": name, "videos_per_s": best, "ran": ran})
    return rows


def skip_section(files):
    cpu = {}
    for mode in ("default", "noref"):
        t0 = os.times()
        for f in files:
            subprocess.run(["ffmpeg", "-loglevel", "error", "-threads", "1", "-skip_frame", mode,
                            "-i", str(f), "-f", "null", "-"], check=True)
        t1 = os.times()
        cpu[mode] = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
    types = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v",
                            "-show_entries", "frame=pict_type", "-of", "csv=p=0", str(files[0])],
                           check=True, capture_output=True, text=True).stdout.split()
    return {"cpu_s": cpu, "b_share": sum(t.startswith("B") for t in types) / max(len(types), 1)}


def what_records_say(out):
    """Per file: the labels, scores and frame times of its record (what decoding decides)."""
    recs = [json.loads(line) for line in out.splitlines()]
    return sorted(json.dumps([r["path"], r.get("top_k"), r.get("frame_times")]) for r in recs)


def vidcls_decode_section(groups, baseline, runs, model_args=()):
    """Per group of files: CPU s per video and videos/s of `vidcls predict MODEL_ARGS` built at
    the baseline revision and of this build, alternating, medians over `runs`."""
    sha, base = baseline
    rows = []
    for name, files in groups:
        per_video = {"before": [], "after": []}
        rate_of = {"before": [], "after": []}
        same = True
        for _ in range(runs):
            said = {}
            for label, binary in (("before", base), ("after", VIDCLS)):
                args = ["predict", "-f", "jsonl", "-k", "1", "--summary-json", *model_args]
                _, _, cpu, code, out, err = timed_cpu([*args, *map(str, files)], binary)
                if code != 0:
                    sys.exit(f"vidcls ({label}) failed: {err}")
                summary = json.loads(err.strip().splitlines()[-1])
                per_video[label].append(cpu / len(files))
                rate_of[label].append(summary["classified"] / summary["elapsed_s"])
                said[label] = what_records_say(out)
            same &= said["before"] == said["after"]
        med = {k: statistics.median(v) for k, v in per_video.items()}
        rows.append({
            "group": name, "videos": len(files), "rev": sha, "cpu_s_per_video": med,
            "videos_per_s": {k: statistics.median(v) for k, v in rate_of.items()},
            "ratio_of_pairs": statistics.median(
                b / a for b, a in zip(per_video["before"], per_video["after"])),
            "same_records": same,
        })
    return rows


def comparison_row(r):
    """A table row of `vidcls_decode_section`'s: files, videos, CPU s before and now, ratio,
    videos/s before and now, same records."""
    c, v = r["cpu_s_per_video"], r["videos_per_s"]
    return (f"| {r['group']} | {r['videos']} | {c['before']:.3f} | {c['after']:.3f} | "
            f"{r['ratio_of_pairs']:.2f}x | {v['before']:.2f} | {v['after']:.2f} | "
            f"{'yes' if r['same_records'] else '**no**'} |")


def render_decode(skip, vidcls_rows, runs, videos):
    c = skip["cpu_s"]
    lines = [
        "### Decode: non-reference frames dropped",
        "",
        f"The ffmpeg CLI decoding the {videos} 320x240 clips whole on one thread with "
        f"`-skip_frame noref`: {c['noref']:.2f} CPU s against {c['default']:.2f} "
        f"({c['default'] / c['noref']:.2f}x); {skip['b_share']:.0%} of the first clip's frames "
        "are B-frames. vidcls decodes one clip after a keyframe seek; while it reads a clip it "
        "lets the decoder drop each non-reference frame that none of the clip's times takes "
        "(H.264 and HEVC; the rule is in `src/decode/nonref.rs`), so the frame each time takes "
        "is the same.",
    ]
    if vidcls_rows:
        rev = vidcls_rows[0]["rev"]
        lines += [
            "",
            f"`vidcls predict` (default motion model) built at {rev} (every frame decoded) "
            f"against this build, {runs} alternating runs, medians; CPU s per video is the "
            "process's user + system time (`/usr/bin/time`) for all the files of a group over "
            "their count, start-up and model loading included:",
            "",
            f"| files | videos | CPU s per video at {rev} | CPU s per video now | "
            "before / now (median of pairs) | videos/s before | videos/s now | same records |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [comparison_row(r) for r in vidcls_rows]
        lines += [
            "",
            "Same records: both builds' records give the same labels, scores and frame times.",
        ]
    return "\n".join(lines) + "\n"


def preprocess_section(configs, groups, baseline, runs):
    """Part 4, per Kinetics config: decoding and preprocessing alone (vidcls with a stand-in model
    that only averages its input, `vbench.stand_in`, the config otherwise the same; fp32, so the
    stand-in's score is the mean of the exact model input), the baseline build against this one."""
    from vbench.defaults import stand_in

    out = []
    for config in configs:
        name = json.loads(Path(config).read_text())["name"]
        args = ["-m", str(stand_in(Path(config).resolve())), "--device", "cpu", "--precision", "fp32"]
        out.append((name, vidcls_decode_section(groups, baseline, runs, args)))
    return out


def startup_section(configs, video, baseline, runs):
    """Part 5, per config: `vidcls predict -m CONFIG VIDEO` with no other flag (one video, so model
    loading and the load-time check weigh as they do for a user labelling one file): wall and CPU
    seconds of the whole process, the baseline build and this one alternating, medians over
    `runs`, and whether both builds' records say the same."""
    sha, base = baseline
    rows = []
    for config in configs:
        name = json.loads(Path(config).read_text())["name"]
        wall = {"before": [], "after": []}
        cpu = {"before": [], "after": []}
        said = {"before": set(), "after": set()}
        for _ in range(runs):
            for label, binary in (("before", base), ("after", VIDCLS)):
                _, w, c, code, out, err = timed_cpu(["predict", "-m", str(config), "-f", "jsonl",
                                                     "--all-scores", str(video)], binary)
                if code != 0:
                    sys.exit(f"vidcls ({label}) failed on {config}: {err}")
                wall[label].append(w)
                cpu[label].append(c)
                said[label].add(json.dumps(what_records_say(out)))
        rows.append({
            "model": name, "rev": sha,
            "wall_s": {k: statistics.median(v) for k, v in wall.items()},
            "cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
            "ratio_of_pairs": statistics.median(b / a for b, a in zip(wall["before"], wall["after"])),
            "same_records": len(said["before"] | said["after"]) == 1,
        })
    return rows


def render_startup(rows, runs, video):
    rev = rows[0]["rev"]
    lines = [
        "### One video: start-up included",
        "",
        f"`vidcls predict -m CONFIG {video.name}` (one 5-s 320x240 clip, no other flag) built at {rev} "
        f"against this build, {runs} alternating runs, medians of the whole process's wall and CPU "
        "seconds (`/usr/bin/time`): model loading, the load-time check, decoding and the one clip. "
        "Same records: both builds give the same labels, scores (all of them) and frame times.",
        "",
        f"| model | wall s at {rev} | wall s now | before / now (median of pairs) | CPU s at {rev} | "
        "CPU s now | same records |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        w, c = r["wall_s"], r["cpu_s"]
        lines.append(f"| {r['model']} | {w['before']:.2f} | {w['after']:.2f} | {r['ratio_of_pairs']:.2f}x | "
                     f"{c['before']:.2f} | {c['after']:.2f} | {'yes' if r['same_records'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def render_preprocess(sections, runs):
    rev = sections[0][1][0]["rev"]
    lines = [
        "### Decoding and preprocessing alone, Kinetics configs",
        "",
        f"`vidcls predict --precision fp32` with a stand-in model that only averages its input (the "
        f"config otherwise the model's: same frames, resize, crop), built at {rev} against this "
        f"build, {runs} alternating runs, medians; CPU s per video is the process's user + system time "
        "(`/usr/bin/time`) for all the files of a group over their count, start-up included. Same records: the "
        "same labels, scores (the mean of the model input, so a changed input shows) and frame "
        "times.",
        "",
        f"| config | files | videos | CPU s per video at {rev} | CPU s per video now | "
        "before / now (median of pairs) | videos/s before | videos/s now | same records |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [f"| {name} " + comparison_row(r) for name, rows in sections for r in rows]
    return "\n".join(lines) + "\n"


def machine():
    cpu = "unknown"
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    native = "avx512_bf16" in flags.split() or "amx_bf16" in flags.split()
    return cpu, os.cpu_count(), native


def ran_text(ran):
    out = []
    for r in map(json.loads, ran):
        out.append(f"{r['device']}, {r['precision']}, batch {r['batch_size']}" if r else "?")
    return "; ".join(out)


def render_memory(huge, commit, load0, load1):
    """The memory paragraph: what each part of the process costs on the 10000 x 10000 input."""
    m = huge["mappings_mb"]
    base = huge["baseline"]
    return (
        f"Measured at commit {commit} by `scripts/bench_defaults.py --memory-only` (or the "
        f"whole script), load average (1 min) {load0} at the start, {load1} at the end. "
        f"A {huge['file_mb']:.1f} MB MJPEG AVI of 3 frames of 10000 x 10000 "
        f"({huge['pix_fmt']}): by default the run "
        f"exits {huge['default_exit']} with the record `{huge['default_error']}` (peak RSS "
        f"{huge['refused_peak_mb']:.0f} MB: libtorch and the model, no frame decoded); with "
        f"`--max-pixels 100000000` it peaks at **{huge['raised_peak_mb']:.0f} MB** RSS and takes "
        f"{huge['raised_wall_s']:.1f} s, {huge['html_peak_mb']:.0f} MB with thumbnails "
        f"(`-f html`)."
        + (f" vidcls at {base['rev']} ({base['what']}) peaks at {base['peak_mb']:.0f} MB and "
           f"takes {base['wall_s']:.1f} s on it." if base else "")
        + f"\n\nWhere it goes: `vidcls --version` alone peaks at "
        f"{huge['version_peak_mb']:.0f} MB (libtorch and the libraries it links, no model). At "
        f"the refused run's fullest moment, resident memory is {m.get('cuda', 0):.0f} MB of "
        f"libtorch's CUDA libraries (libtorch_cuda, cuBLAS, nvJitLink, NVRTC, ..., loaded "
        f"with no GPU), {m.get('torch_cpu', 0):.0f} MB of libtorch_cpu, "
        f"{m.get('other', 0):.0f} MB of other libraries and {m.get('anon', 0):.0f} MB of "
        f"anonymous memory (heaps, the model), {sum(m.values()):.0f} MB in all. With the frames "
        f"allowed the peak is {huge['raised_peak_mb'] - huge['refused_peak_mb']:.0f} MB higher: "
        f"the input holds two decoded pictures (the frame shown and the next one, needed to "
        f"know where the first ends; {2 * 1.5 * 1e8 / 2**20:.0f} MB in YUV 4:2:0) and converts "
        f"to RGB in bands of about 1 MB, while some of the memory that makes the refused run's "
        f"peak (start-up) is given back before the first frame is decoded."
    )


def render(huge, rows, runs, videos, load0, load1):
    cpu, cores, native = machine()
    commit = head_commit()
    lines = [
        "## Automatic defaults and memory per input (`scripts/bench_defaults.py`)",
        "",
        f"Written by `scripts/bench_defaults.py --write`; CPU: {cpu}, {cores} logical CPUs, "
        f"native bf16: {'yes' if native else 'no'}; vidcls at commit {commit}; load average "
        f"(1 min) {load0} at the start, {load1} at the end.",
        "",
        MEM_BEGIN,
        render_memory(huge, commit, load0, load1),
        MEM_END,
        "",
        f"Default flags against the defaults before `auto` (`-b 8 --precision fp32`), "
        f"{videos} clips of 5 s at 320x240 (H.264 veryfast, testsrc2 with noise), best of "
        f"{runs} alternating runs:",
        "",
        "| model | defaults videos/s | `-b 8 --precision fp32` videos/s | ratio | defaults ran |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        v = r["videos_per_s"]
        lines.append(f"| {r['model']} | {v['defaults']:.2f} | {v['before']:.2f} | "
                     f"{v['defaults'] / v['before']:.2f}x | {ran_text(r['ran']['defaults'])} |")
    return "\n".join(lines) + "\n"


def header(load0, load1, mode="--decode-only"):
    cpu, cores, native = machine()
    commit = head_commit()
    return (f"Written by `scripts/bench_defaults.py {mode} --write`; CPU: {cpu}, "
            f"{cores} logical CPUs; vidcls at commit {commit}; load average (1 min) {load0} at "
            f"the start, {load1} at the end.\n\n")


def write_between(begin, end, text):
    write_section(ROOT / "docs/BENCHMARKS.md", begin, end, text,
                  append=begin in (BEGIN, PRE_BEGIN, START_BEGIN))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--r2plus1d", help="r2plus1d_18 config from the exporter")
    ap.add_argument("--memory-only", action="store_true",
                    help="only part 1 (no --r2plus1d needed)")
    ap.add_argument("--decode-only", action="store_true",
                    help="only part 3 (needs --baseline-rev)")
    ap.add_argument("--preprocess-only", nargs="+", metavar="CONFIG",
                    help="only part 4 on these exported configs (needs --baseline-rev)")
    ap.add_argument("--startup-only", nargs="+", metavar="CONFIG",
                    help="only part 5 on these exported configs (needs --baseline-rev)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--baseline-rev", help="also measure parts 1 and 3 with vidcls built at this revision")
    ap.add_argument("--baseline-what", default="whole frames held in RGB and converted to float "
                    "at full size", help="what the baseline revision does differently")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    if not VIDCLS.exists():
        sys.exit("build first: cargo build --release")
    if (a.decode_only or a.preprocess_only or a.startup_only) and not a.baseline_rev:
        sys.exit("--decode-only, --preprocess-only and --startup-only compare with a baseline: "
                 "give --baseline-rev")
    if not (a.decode_only or a.memory_only or a.preprocess_only or a.startup_only) and not a.r2plus1d:
        sys.exit("--r2plus1d CONFIG is needed (or --memory-only, or --decode-only)")
    baseline = baseline_binary(a.baseline_rev) if a.baseline_rev else None
    load0 = os.getloadavg()[0]
    d = cache_dir()
    if a.startup_only:
        video = corpus(d)[0]
        rows = startup_section(a.startup_only, video, baseline, a.runs)
        text = (header(f"{load0:.2f}", f"{os.getloadavg()[0]:.2f}", "--startup-only CONFIG...")
                + render_startup(rows, a.runs, video))
        print(text)
        (d / "startup.json").write_text(json.dumps(rows, indent=1))
        if a.write:
            write_between(START_BEGIN, START_END, text)
        return
    if a.preprocess_only:
        groups = [("5 s, 320x240, veryfast", corpus(d)),
                  ("5 s, 1280x720, veryfast", corpus(d, size="1280x720"))]
        sections = preprocess_section(a.preprocess_only, groups, baseline, a.runs)
        text = (header(f"{load0:.2f}", f"{os.getloadavg()[0]:.2f}", "--preprocess-only CONFIG...")
                + render_preprocess(sections, a.runs))
        print(text)
        (d / "preprocess.json").write_text(json.dumps(sections, indent=1))
        if a.write:
            write_between(PRE_BEGIN, PRE_END, text)
        return
    if not a.decode_only:
        huge = huge_section(d, baseline, a.baseline_what)
    if a.memory_only:
        commit = head_commit()
        text = render_memory(huge, commit, f"{load0:.2f}", f"{os.getloadavg()[0]:.2f}") + "\n"
        print(text)
        (d / "memory.json").write_text(json.dumps(huge, indent=1))
        if a.write:
            write_between(MEM_BEGIN, MEM_END, text)
        return
    files = corpus(d)
    text = None
    if not a.decode_only:
        models = [("motion (built-in)", []), ("r2plus1d_18", ["-m", a.r2plus1d])]
        rows = defaults_section(models, files, a.runs)
        text = render(huge, rows, a.runs, len(files), f"{load0:.2f}", f"{os.getloadavg()[0]:.2f}")
        print(text)
        (d / "result.json").write_text(json.dumps({"huge": huge, "rows": rows}, indent=1))
    skip = skip_section(files)
    groups = [
        ("5 s, 320x240, veryfast", files),
        ("5 s, 640x360, veryfast", corpus(d, size="640x360")),
        ("5 s, 1280x720, veryfast", corpus(d, size="1280x720")),
        ("30 s, 640x360, x264 defaults", long_gop(d)),
    ]
    vrows = vidcls_decode_section(groups, baseline, a.runs) if baseline else []
    decode_text = render_decode(skip, vrows, a.runs, len(files))
    if a.decode_only:
        decode_text = header(f"{load0:.2f}", f"{os.getloadavg()[0]:.2f}") + decode_text
    print(decode_text)
    (d / "decode.json").write_text(json.dumps({"skip": skip, "vidcls": vrows}, indent=1))
    if a.write:
        if text is not None:
            write_between(BEGIN, END, text)
        write_between(DECODE_BEGIN, DECODE_END, decode_text)


if __name__ == "__main__":
    main()
