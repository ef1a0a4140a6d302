"""The benchmark's sections: each one runs its measurements and returns its typed result."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from .common import ROOT, loadavg, log, ratio, sha256
from .results import (Agreement, Batch1, LongVsShort, ModelBench, ModelSummary, MotionAgreement, MotionRun,
                      MotionSet, Plan, PrecisionRuns, Rss, RssRun, Speedup, StageSummary, VidclsRun)
from .runners import batches_of, ffmpeg_summary, run_model_alone, run_python, run_vidcls
from .setup import BATCH, KINETICS, PRECISIONS, Corpus, weights_of


def fmt_rate(x) -> str:
    return "—" if x is None else f"{x:.2f}"


def agreement(a: list[int], b: list[int]) -> Agreement:
    n = min(len(a), len(b))
    same = sum(1 for x, y in zip(a[:n], b[:n]) if x == y)
    return Agreement(n=n, same=same, rate=same / n if n else None)


def agreement_by_path(a: dict[str, int] | None, b: dict[str, int] | None) -> Agreement | None:
    """Top-1 agreement of two runs over the paths both classified."""
    if not a or not b:
        return None
    keys = [k for k in sorted(a) if k in b]
    return agreement([a[k] for k in keys], [b[k] for k in keys])


def stage_summary(v: VidclsRun) -> StageSummary:
    return StageSummary(videos_per_s=v.videos_per_s, decode_ms=v.decode_ms, preprocess_ms=v.preprocess_ms,
                        model_ms=v.model_ms, peak_rss_bytes=v.peak_rss_bytes, error=v.error)


def bench_model(name: str, config: Path, files: list[Path], vidcls: Path, ff: dict, p: Plan,
                clips: int = 1, crops: int = 1, all_scores: bool = False) -> ModelBench:
    batch = BATCH[name]
    res = ModelBench(model=name, config=str(config.relative_to(ROOT)), videos=len(files), clips=clips,
                     crops=crops, batch_size=batch, files=[str(f.relative_to(ROOT)) for f in files],
                     ffmpeg=ffmpeg_summary(ff, files, clips), runs={})
    for prec in PRECISIONS:
        log(f"{name} {clips}x{crops} {prec}: vidcls on {len(files)} videos")
        v = run_vidcls(vidcls, config, files, prec, batch, clips, crops, all_scores)
        # When vidcls cannot load the model in this precision, one video shows whether the Python
        # pipeline fails the same way (it would decode every file only to fail in the model).
        py_files = files[:1] if v.exit == 2 else files
        log(f"{name} {clips}x{crops} {prec}: python pipeline (seeking, then decoding all) on {len(py_files)} videos")
        py = run_python(config, py_files, prec, batch, clips, crops)
        full = run_python(config, py_files, prec, batch, clips, crops, seek=False)
        log(f"{name} {clips}x{crops} {prec}: model alone")
        mo = run_model_alone(config, prec, batches_of(len(files) * clips * crops, batch), p.model_budget_s)
        row = PrecisionRuns(vidcls=v, python=py, model=mo, load=loadavg(),
                            vidcls_vs_python=ratio(v.videos_per_s, py.videos_per_s),
                            vidcls_vs_model=ratio(v.views_per_s, mo.views_per_s))
        row.vidcls_python_top1_agreement = agreement_by_path(v.top1, py.top1)
        row.python_full = full
        row.vidcls_vs_python_full = ratio(v.videos_per_s, full.videos_per_s)
        res.runs[prec] = row
        log(f"  vidcls {fmt_rate(v.videos_per_s)} videos/s, python {fmt_rate(py.videos_per_s)}, "
            f"model alone {fmt_rate(mo.views_per_s)} views/s" + (f"  [vidcls: {v.error}]" if v.error else ""))
    if name in KINETICS and clips * crops == 1 and batch != 1:
        # Bigger batches are slower per clip on a small CPU (the activations of several clips
        # outgrow the caches): the same run at batch 1, the Python pipeline's batch for 1 view.
        res.batch1 = {}
        for prec in PRECISIONS:
            if res.runs[prec].vidcls.error:
                continue
            log(f"{name} {prec}: vidcls and the model alone at batch 1")
            v1 = run_vidcls(vidcls, config, files, prec, 1)
            m1 = run_model_alone(config, prec, batches_of(len(files), 1), p.model_budget_s)
            res.batch1[prec] = Batch1(
                vidcls=stage_summary(v1),
                model=ModelSummary(views_per_s=m1.views_per_s, batches_run=m1.batches_run, error=m1.error),
                vidcls_vs_model=ratio(v1.views_per_s, m1.views_per_s),
                vidcls_vs_python=ratio(v1.videos_per_s, res.runs[prec].python.videos_per_s),
                vs_default_batch=ratio(v1.videos_per_s, res.runs[prec].vidcls.videos_per_s))
    f32, b16 = res.runs["fp32"], res.runs["bf16"]
    res.bf16_speedup = Speedup(
        vidcls=ratio(b16.vidcls.videos_per_s, f32.vidcls.videos_per_s),
        python=ratio(b16.python.videos_per_s, f32.python.videos_per_s),
        model=ratio(b16.model.views_per_s, f32.model.views_per_s),
        model_autocast=ratio(b16.model.autocast.views_per_s if b16.model.autocast else None,
                             f32.model.views_per_s))
    if f32.vidcls.top1_list and b16.vidcls.top1_list:
        res.bf16_top1_agreement = agreement(f32.vidcls.top1_list, b16.vidcls.top1_list)
    return res


def long_vs_short(vidcls: Path, config: Path, corpus: Corpus, ff_long: dict, repeats: int) -> LongVsShort:
    """One centre clip of each video; short and long interleaved so that load hits both alike."""
    files = corpus.ten_s[:1]  # warm-up, not counted (the first video pays for first touches)
    for _ in range(repeats):
        for s, lng in zip(corpus.ten_s, corpus.long):
            files += [s, lng]
    v = run_vidcls(vidcls, config, files, "fp32", 1)
    res = LongVsShort(model="motion", precision="fp32", batch_size=1, runs=len(files) - 1, exit=v.exit,
                      ffmpeg_full_decode_s={str(Path(k).relative_to(ROOT)): round(t, 3) for k, t in ff_long.items()})
    if v.error:
        res.error = v.error
        return res
    per = {"10s": [], "10min": []}
    dec = {"10s": [], "10min": []}
    # Records come back in input order; paths and times line up. The first is the warm-up.
    for path, ms, d in list(zip(v.paths, v.per_video_ms, v.decode_pre_ms))[1:]:
        k = "10min" if "10min" in Path(path).name else "10s"
        per[k].append(ms)
        dec[k].append(d)
    res.per_video_ms = per
    res.decode_pre_ms = dec
    res.median_ms = {k: statistics.median(x) for k, x in per.items() if x}
    res.median_decode_pre_ms = {k: statistics.median(x) for k, x in dec.items() if x}
    res.decode_pre_ratio = ratio(res.median_decode_pre_ms.get("10min"), res.median_decode_pre_ms.get("10s"))
    res.ratio = ratio(res.median_ms.get("10min"), res.median_ms.get("10s"))
    return res


def rss_flat(vidcls: Path, config: Path, corpus: Corpus) -> Rss:
    """Peak RSS for the small and the large count. The small count runs twice: peak RSS moves by a
    few percent between identical runs (allocator, queue timing), and that spread is the yardstick."""
    out = Rss(model="motion", precision="fp32", batch_size=BATCH["motion"], runs={})
    small, large = sorted(corpus.many)
    for n, tries in ((small, 2), (large, 1)):
        files = corpus.many[n]
        rs = []
        for _ in range(tries):
            log(f"peak RSS: vidcls on {n} videos")
            v = run_vidcls(vidcls, config, files, "fp32", BATCH["motion"], stdin_list=True)
            rs.append(v.peak_rss_bytes)
        out.runs[str(n)] = RssRun(inputs=v.inputs, ok=v.ok, failed=v.failed, exit=v.exit, wall_s=v.wall_s,
                                  videos_per_s=v.videos_per_s, error=v.error,
                                  peak_rss_bytes=max(r or 0 for r in rs), peak_rss_each=rs)
    a, b = out.runs[str(small)].peak_rss_bytes, out.runs[str(large)].peak_rss_bytes
    each = out.runs[str(small)].peak_rss_each
    out.ratio = ratio(b, a)
    out.spread_small = ratio(max(each), min(each)) if all(each) else None
    out.growth_mb_per_100_videos = (b - a) / (large - small) * 100 / 2**20 if a and b else None
    return out


def motion_agreement(vidcls: Path, config: Path, motion_set: Path, made_by: MotionSet) -> MotionAgreement:
    with open(motion_set / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    files = [motion_set / r["path"] for r in rows]
    cfg = json.loads(config.read_text())
    truth = [cfg["labels"].index(r["label"]) for r in rows]
    out = MotionAgreement(set=str(motion_set.relative_to(ROOT)), videos=len(files), runs={}, generator=made_by,
                          model_sha256=sha256(weights_of(config)))
    preds, scores = {}, {}
    for prec in PRECISIONS:
        log(f"motion set: vidcls {prec} on {len(files)} clips")
        v = run_vidcls(vidcls, config, files, prec, BATCH["motion"], all_scores=True)
        run = MotionRun(ok=v.ok, failed=v.failed, exit=v.exit, videos_per_s=v.videos_per_s,
                        peak_rss_bytes=v.peak_rss_bytes, error=v.error, decode_ms=v.decode_ms,
                        preprocess_ms=v.preprocess_ms, model_ms=v.model_ms)
        if v.top1:
            pred = [v.top1.get(str(f)) for f in files]
            run.accuracy = sum(1 for a, b in zip(pred, truth) if a == b) / len(truth)
            preds[prec], scores[prec] = pred, v.scores_list
        out.runs[prec] = run
    a, b = preds.get("fp32"), preds.get("bf16")
    if a and b:
        out.top1_agreement = agreement(a, b)
        sa, sb = scores["fp32"], scores["bf16"]
        if sa and sb and all(sa) and all(sb):
            out.max_abs_score_diff = max(abs(x - y) for ra, rb in zip(sa, sb) for x, y in zip(ra, rb))
    return out
