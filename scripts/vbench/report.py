"""docs/BENCHMARKS.md and docs/benchmarks.json from a run's results."""

from __future__ import annotations

import json
from pathlib import Path

from .common import mean, ratio
from .report_format import cell, fmt, gb, rx, stage, verdict
from .results import BenchResult, ModelBench, to_json
from .setup import BATCH, PRECISIONS, RESOLUTIONS
from .verdicts import DEFAULTS_GOAL

SECTION_TITLES = {
    "motion-set": "bf16 vs fp32 on the motion benchmark",
    "long": "One centre clip: 10-minute vs 10-second video",
    "rss": "Peak RSS against the number of videos",
}


def write_report(R: BenchResult, md_path: Path, json_path: Path) -> None:
    """The whole page, from the results alone (earlier one-off measurements live in
    docs/BENCHMARKS-HISTORY.md, which no run rewrites)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_json(R), indent=1, default=str) + "\n")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(markdown(R, json_path.name)) + "\n")


def markdown(R: BenchResult, json_name: str) -> list[str]:
    L: list[str] = []
    a = L.append
    _header(R, json_name, a)
    _targets(R, a)
    _protocol(R, a)
    _defaults(R, a)
    _one_clip(R, a)
    _multiview(R, a)
    _long_vs_short(R, a)
    _rss(R, a)
    _motion_agreement(R, a)
    a("Earlier one-off measurements (layouts, start-up, GPU checks, pulled models), kept as history with their "
      "commands and commits: [BENCHMARKS-HISTORY.md](BENCHMARKS-HISTORY.md).")
    return L


def load_samples(R: BenchResult) -> list[float]:
    """The 1-minute load averages taken after each model's runs."""
    out = []
    for res in list(R.one_clip.values()) + ([R.multiview] if R.multiview else []):
        for run in res.runs.values():
            if run.load:
                out.append(run.load[0])
    return out


def corpus_agreement(R: BenchResult) -> str:
    motion = R.one_clip.get("motion")
    ag = motion.bf16_top1_agreement if motion else None
    return f"{ag.same}/{ag.n}" if ag else "—"


def _header(R: BenchResult, json_name: str, a) -> None:
    M = R.machine
    a("# Benchmarks")
    a("")
    a(f"Written by `scripts/bench.sh{' --quick' if R.quick else ''}` (`scripts/vbench/`); every number is "
      f"also in `{json_name}`. One run on one machine:")
    if R.quick:
        a("")
        a("**Smoke run (`--quick`): a handful of videos per measurement, so the numbers are not meaningful.**")
    a("")
    a(f"- CPU: **{M.cpu}**, {M.logical_cpus} logical CPUs"
      f"{' (AVX-512 BF16)' if M.avx512_bf16 else ''}, {gb(M.memory_bytes)} GB RAM, Linux {M.kernel}")
    a(f"- Date: {M.date}; vidcls at commit {M.git_commit}{' (with local changes)' if M.git_dirty else ''}; "
      f"torch {R.torch or '?'}; {M.ffmpeg.split(' Copyright')[0]}")
    cores = M.logical_cpus or 1
    loads = [R.load_start[0], R.load_end[0]] + load_samples(R)
    a(f"- Load average (1, 5, 15 min) at the start: {R.load_start}, at the end: {R.load_end}; highest 1-min "
      f"load seen between measurements: {max(loads):.2f} (the benchmark itself keeps about {cores} busy)"
      + (" — **other work was running too: absolute numbers are pessimistic and ratios noisier**"
         if max(loads) > cores + 1 else ""))
    a(f"- Run time: {fmt(R.seconds / 60, 1)} min of measurements, plus {fmt(R.setup_seconds, 0)} s to make "
      f"videos and models (cached for later runs)")
    for r in R.reruns or []:
        a(f"- Re-run on its own (`scripts/bench.sh rerun {r.section}`): \"{SECTION_TITLES.get(r.section, r.section)}\" "
          f"on {r.date}, vidcls at commit {r.git_commit}{' (with local changes)' if r.git_dirty else ''}, "
          f"{fmt(r.seconds / 60, 1)} min, load {r.load_start} at the start and {r.load_end} at the end; "
          "the rest of the page is from the run above")
    a("")


def _targets(R: BenchResult, a) -> None:
    a("## Targets (issues 7 and 12)")
    a("")
    a("| target | measured | verdict |")
    a("|---|---|---|")
    for t in R.targets:
        part = f" (met for {', '.join(t.met_for)})" if t.met_for and t.met is False else ""
        a(f"| {t.target} | {t.measured} | {verdict(t.met)}{part} |")
    a("")
    if R.notes:
        a("What limits them:")
        a("")
        for n in R.notes:
            a(f"- {n}")
        a("")


def _protocol(R: BenchResult, a) -> None:
    a("## Protocol")
    a("")
    c = R.corpus
    a(f"- Corpus (ffmpeg CLI, cached in `target/bench/corpus`): {c.short} short clips of {c.short_seconds} s at "
      f"{', '.join(RESOLUTIONS)} ({c.short_per_res} each; `testsrc2` with temporal noise, H.264 veryfast CRF 23, "
      f"30 fps, keyframe every 2 s); {c.ten_s} x 10 s and {c.long} x 10 min at 320x240 (x264 ultrafast, "
      "keyframe every 3 s).")
    a("- Models: r2plus1d_18 (16 x 112²), s3d and i3d (64 x 224²) exported by `scripts/export_models.py --random-init "
      "--seed 0` (speed does not depend on the weights), and the default motion model (`configs/motion.json`, "
      f"weights `{R.motion_weights}`, sha256 {R.motion_sha256[:12]}…).")
    a("- **vidcls**: `vidcls predict -f jsonl -k 1 --precision P --batch-size B` on all the files in one call; "
      "videos/s and clips/s from its run summary (`--summary-json`: classified videos and views over the "
      "pipeline's seconds; model loading excluded, the start-up column has it); "
      "per-stage times are the means of the records' `timings` (decode and preprocess run on a decode thread while "
      "the model runs, so they overlap with `model_ms` and are slowed by it: they are not comparable with the Python "
      "pipeline's, whose stages run one after another); peak RSS from `/usr/bin/time -f %M`.")
    a("- **python** (the baseline): `scripts/reference_predict.py` through `vbench.python_pipeline --seek` on the "
      "same files and views, one video after another: duration from the container's metadata, and per clip a PyAV "
      "seek to the keyframe before it and decoding up to its last frame, as vidcls does (and as torchcodec or PyAV "
      "users write it); rate = videos / sum of its per-video times (model loading excluded). "
      "bf16: the module and its input converted to bfloat16, output back to float, as vidcls does.")
    a("- **python, decode all** (second row): the same without `--seek`: PyAV decodes every frame of the file, "
      "as the parity reference does.")
    a("- **model alone**: the same TorchScript file on random tensors of the same shape, in the batch sizes vidcls "
      f"ran (batch B: {', '.join(f'{m} {b}' for m, b in BATCH.items())}), same precision, "
      f"{R.model_threads or '?'} torch threads, no_grad, after one warm-up batch; long runs stop after "
      f"{R.plan.model_budget_s:.0f} s (at least 2 batches).")
    a("- **ffmpeg**: `ffmpeg -i FILE -f null -` per file (decodes every frame; vidcls decodes one clip after a seek).")
    a("")


def _precision_runs(res: ModelBench):
    """For each precision of a model's measurement: the precision, its runs, and the vidcls, python
    and model-alone runs among them."""
    for p in PRECISIONS:
        run = res.runs[p]
        yield p, run, run.vidcls, run.python, run.model


def _ran(v) -> str:
    r = v.ran or {}
    return f"{r.get('device', '?')}, {r.get('precision', '?')}, batch {r.get('batch_size', '?')}" if r else "—"


def _defaults(R: BenchResult, a) -> None:
    if not R.defaults:
        return
    a("## Defaults: `vidcls predict -m MODEL` with no speed flags (issue 12)")
    a("")
    a("vidcls with no `--precision`, `--batch-size` or `--threads` (what it chose is the records' `ran`), next to "
      "the Python pipeline in fp32, one view per forward pass (`scripts/reference_predict.py`, the way people write "
      "it), on the same files in the same run. Model alone: the same TorchScript file at the precision and batch "
      "size the defaults chose, on random input. Agreement: top-1 of the defaults against the Python pipeline's "
      "fp32 top-1 on these files. The Kinetics exports have random weights: their top-1 is near a tie between 400 "
      "classes, they carry no precision record (so the defaults run them in fp32), and their agreement figures "
      "say nothing of trained models; for the motion model (trained) the motion set below counts.")
    a("")
    a("| model | defaults ran | vidcls videos/s | python fp32 videos/s | defaults / python | goal | "
      "python fp32, decode all, videos/s | defaults / python, decode all | "
      "model alone clips/s | vidcls / model alone | top-1 = python fp32 | export record (bf16 agreement) |")
    a("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, d in R.defaults.items():
        v, py, mo = d.vidcls, d.python_fp32, d.model_alone
        ag = d.top1_vs_python_fp32
        rec = d.export_record or {}
        record = (f"{fmt(rec.get('bf16_top1_agreement'), 4)} ({rec.get('clips')} clips)" if rec else "none")
        a(f"| {m} | {_ran(v)} | {cell(v, 'videos_per_s')} | {cell(py, 'videos_per_s')} | {rx(d.vs_python)} | "
          f">= {fmt(DEFAULTS_GOAL.get(m, 3.0), 0)}x | {cell(d.python_full_fp32, 'videos_per_s')} | "
          f"{rx(d.vs_python_full)} | {cell(mo, 'views_per_s')} | "
          f"{rx(ratio(v.views_per_s, mo.views_per_s))} | {f'{ag.same}/{ag.n}' if ag else '—'} | {record} |")
    a("")
    md = R.motion_defaults
    if md:
        ag = md.top1_agreement
        a(f"Motion benchmark (`{md.set}`, {md.videos} clips): the defaults ran {_ran(md)}; top-1 agreement with "
          f"`--precision fp32`: **{f'{ag.same}/{ag.n}' if ag else '—'}**"
          f" ({fmt(100 * ag.rate, 1) if ag and ag.rate is not None else '—'}%); {fmt(md.default_videos_per_s)} "
          f"videos/s against {fmt(md.fp32_videos_per_s)}." + (f" Error: {md.error}" if md.error else ""))
        a("")
    a("How the two stages share the cores. Decode alone: vidcls's own decoding and preprocessing, run with a "
      "stand-in model that only averages its input (same config, so the same frames, sizes and crops), CPU "
      "seconds from `/usr/bin/time` less those of the same command on no input (start-up). Model alone: CPU "
      "seconds of its forward passes. End-to-end: the defaults run's pipeline seconds (model loading excluded) "
      "per video. Efficiency = end-to-end / ((decode CPU + model CPU) / cores); 1.00x means no core idles and "
      "neither stage slows the other.")
    a("")
    a("| model | decode + preprocess CPU ms/video | model CPU ms/video | (decode + model) / cores, ms | "
      "end-to-end ms/video | efficiency | vidcls CPU s (whole run) |")
    a("|---|---:|---:|---:|---:|---:|---:|")
    for m, d in R.defaults.items():
        a(f"| {m} | {fmt(d.decode.cpu_ms_per_video, 1)} | {fmt(d.model_cpu_ms_per_video, 1)} | "
          f"{fmt(d.bound_ms_per_video, 1)} | {fmt(d.e2e_ms_per_video, 1)} | {rx(d.efficiency)} | "
          f"{fmt(d.vidcls.cpu_s, 1)} |")
    a("")
    flags = sorted({f for d in R.defaults.values() for f in (d.levers or {})})
    if flags:
        a("The defaults against the same run with one of their choices undone (videos/s; `--threads N`: one "
          "decode worker per two cores, the default before, instead of one per core):")
        a("")
        a("| model | defaults | " + " | ".join(f"`{f}`" for f in flags) + " |")
        a("|---|---:|" + "---:|" * len(flags))
        for m, d in R.defaults.items():
            lv = d.levers or {}
            a(f"| {m} | {cell(d.vidcls, 'videos_per_s')} | "
              + " | ".join(f"{cell(lv[f], 'videos_per_s')} ({rx(ratio(d.vidcls.videos_per_s, lv[f].videos_per_s))})"
                           if f in lv else "—" for f in flags) + " |")
        a("")
        a("In brackets: defaults / that run.")
        a("")


def _one_clip(R: BenchResult, a) -> None:
    a("## 1 clip per video")
    a("")
    a("| model | precision | videos | batch | vidcls videos/s | vidcls clips/s | python videos/s | "
      "python, decode all, videos/s | model alone clips/s | ffmpeg decode videos/s | vidcls / python | "
      "vidcls / python, decode all | vidcls / model alone |")
    a("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m, res in R.one_clip.items():
        for p, run, v, py, mo in _precision_runs(res):
            a(f"| {m} | {p} | {res.videos} | {res.batch_size} | {cell(v, 'videos_per_s')} | {cell(v, 'clips_per_s')} | "
              f"{cell(py, 'videos_per_s')} | {cell(run.python_full, 'videos_per_s')} | {cell(mo, 'views_per_s')} | "
              f"{fmt(res.ffmpeg.videos_per_s)} | {rx(run.vidcls_vs_python)} | {rx(run.vidcls_vs_python_full)} | "
              f"{rx(run.vidcls_vs_model)} |")
    a("")
    a("Time per video by stage (ms, mean: decode / preprocess / model), start-up and peak RSS:")
    a("")
    a("| model | precision | vidcls stages | vidcls start-up (s) | vidcls peak RSS (GB) | python stages | "
      "python peak RSS (GB) | model alone peak RSS (GB) |")
    a("|---|---|---:|---:|---:|---:|---:|---:|")
    for m, res in R.one_clip.items():
        for p, run, v, py, mo in _precision_runs(res):
            a(f"| {m} | {p} | {stage(v)} | {fmt(v.startup_s, 1)} | {gb(v.peak_rss_bytes)} | {stage(py)} | "
              f"{gb(py.peak_rss_bytes)} | {gb(mo.peak_rss_bytes)} |")
    a("")
    b1 = [(m, p, res.batch1[p], res) for m, res in R.one_clip.items() for p in PRECISIONS
          if p in (res.batch1 or {})]
    if b1:
        a("The same vidcls runs at `--batch-size 1` (the Python pipeline runs one view per forward pass too):")
        a("")
        a("| model | precision | default batch | vidcls videos/s, default batch | vidcls videos/s, batch 1 | "
          "model alone clips/s, batch 1 | batch 1 / default | vidcls / python, batch 1 | vidcls / model alone, batch 1 |")
        a("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for m, p, r, res in b1:
            a(f"| {m} | {p} | {res.batch_size} | {cell(res.runs[p].vidcls, 'videos_per_s')} | "
              f"{cell(r.vidcls, 'videos_per_s')} | {cell(r.model, 'views_per_s')} | {rx(r.vs_default_batch)} | "
              f"{rx(r.vidcls_vs_python)} | {rx(r.vidcls_vs_model)} |")
        a("")
    a("bf16 speed-up over fp32 (vidcls / python / model alone):")
    a("")
    a("| model | vidcls | python | model alone | model alone, autocast | fp32 vs bf16 top-1 agreement (vidcls) |")
    a("|---|---:|---:|---:|---:|---:|")
    for m, res in R.one_clip.items():
        s = res.bf16_speedup
        ag = res.bf16_top1_agreement
        a(f"| {m} | {rx(s.vidcls)} | {rx(s.python)} | {rx(s.model)} | {rx(s.model_autocast)} | "
          f"{(str(ag.same) + '/' + str(ag.n)) if ag else '—'} |")
    a("")
    a("**The Kinetics models have random weights**: their top-1 is close to a tie between 400 classes, so the "
      "agreement columns there say nothing of trained models and no target counts them; the motion model "
      "(trained) is the one whose agreement counts.")
    a("")


def _multiview(R: BenchResult, a) -> None:
    mv = R.multiview
    if not mv:
        return
    a(f"## {mv.clips} clips x {mv.crops} crops ({mv.model}, {mv.videos} video{'s' if mv.videos != 1 else ''})")
    a("")
    a("| precision | vidcls videos/s | vidcls clips/s | vidcls views/s | python videos/s | "
      "python, decode all, videos/s | model alone views/s | vidcls / python | vidcls / python, decode all | "
      "vidcls / model alone | vidcls stages (ms per video) | vidcls peak RSS (GB) | python peak RSS (GB) |")
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p, run, v, py, mo in _precision_runs(mv):
        a(f"| {p} | {cell(v, 'videos_per_s', 3)} | {cell(v, 'clips_per_s')} | {cell(v, 'views_per_s')} | "
          f"{cell(py, 'videos_per_s', 3)} | {cell(run.python_full, 'videos_per_s', 3)} | {cell(mo, 'views_per_s')} | "
          f"{rx(run.vidcls_vs_python)} | {rx(run.vidcls_vs_python_full)} | "
          f"{rx(run.vidcls_vs_model)} | {stage(v)} | {gb(v.peak_rss_bytes)} | {gb(py.peak_rss_bytes)} |")
    a("")


def _long_vs_short(R: BenchResult, a) -> None:
    ls = R.long_vs_short
    if not ls:
        return
    a("## One centre clip: 10-minute vs 10-second video")
    a("")
    a("vidcls with the default motion model, fp32, batch 1, the 10-second and 10-minute files interleaved "
      "(after one warm-up video); time per video = decode + preprocess + model from the records. The model's "
      "share is the same for both, so decode + preprocess is also shown alone: it is the part that could grow "
      "with the length.")
    a("")
    a("| video | runs | median ms per video | median decode + preprocess (ms) | all runs, total (ms) | "
      "ffmpeg full decode (s) |")
    a("|---|---:|---:|---:|---|---:|")
    for k, name in (("10s", "10 s, 320x240"), ("10min", "10 min, 320x240")):
        xs = (ls.per_video_ms or {}).get(k, [])
        full = [t for f, t in ls.ffmpeg_full_decode_s.items() if (k == "10min") == ("10min" in f)]
        a(f"| {name} | {len(xs)} | {fmt((ls.median_ms or {}).get(k), 1)} | "
          f"{fmt((ls.median_decode_pre_ms or {}).get(k), 1)} | "
          f"{', '.join(fmt(x, 1) for x in xs)} | {fmt(mean(full))} |")
    a("")
    a(f"Ratio 10 min / 10 s: **{fmt(ls.ratio)}** per video, {rx(ls.decode_pre_ratio)} for decode + "
      "preprocess alone. The Python pipeline decodes the whole file: "
      "18,000 frames for a 10-minute video (4.1 GB of RGB frames at 320x240), so it was not run on these.")
    a("")


def _rss(R: BenchResult, a) -> None:
    rf = R.rss
    if not rf:
        return
    a("## Peak RSS against the number of videos (default motion model, fp32)")
    a("")
    a("| videos | classified | peak RSS (GB), each run | videos/s |")
    a("|---:|---:|---:|---:|")
    for n, r in rf.runs.items():
        each = r.peak_rss_each or [r.peak_rss_bytes]
        a(f"| {n} | {r.ok} | {', '.join(gb(x) for x in each)} | {fmt(r.videos_per_s)} |")
    a("")
    a(f"Growth: {fmt(rf.growth_mb_per_100_videos, 1)} MB per 100 videos (higher run of the small count "
      "to the large count). The inputs are hard links to the short 320x240 and 640x360 clips, passed on stdin.")
    a("")


def _motion_agreement(R: BenchResult, a) -> None:
    ma = R.motion_agreement
    if not ma or ma.runs is None:
        return
    a("## bf16 vs fp32 on the motion benchmark")
    a("")
    g = ma.generator
    made = (f"`scripts/motion_dataset.py --holdout-style --seed {g.seed} --n-per-class {g.n_per_class}` "
            f"(generator sha256 {g.generator_sha256[:12]}…)" if g else
            "`scripts/motion_dataset.py --holdout-style`")
    other = (f" (model file sha256 {ma.model_sha256[:12]}…, not the file the rest of this page measured)"
             if ma.model_sha256 and ma.model_sha256 != R.motion_sha256 else "")
    a(f"`{ma.set}`: {ma.videos} clips from {made} (8 classes), vidcls with the default motion model{other}.")
    a("")
    a("| precision | accuracy | videos/s | stages (ms per video) |")
    a("|---|---:|---:|---:|")
    for p in PRECISIONS:
        r = ma.runs[p]
        acc = r.accuracy
        a(f"| {p} | {fmt(100 * acc, 1) + '%' if acc is not None else '—'} | {fmt(r.videos_per_s)} | {stage(r)} |")
    ag = ma.top1_agreement
    a("")
    a(f"Top-1 agreement fp32 vs bf16: **{ag.same if ag else None}/{ag.n if ag else None}** "
      f"({fmt(100 * ag.rate, 1) if ag and ag.rate is not None else '—'}%); largest difference of a class "
      f"probability: {fmt(ma.max_abs_score_diff, 4)}. On the corpus clips: "
      f"{corpus_agreement(R)}.")
    a("")
