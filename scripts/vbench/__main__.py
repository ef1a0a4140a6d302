"""`python -m vbench run|rerun|report` (scripts/bench.sh puts scripts/ on the module path)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from . import embed, report_scale, train
from .common import CACHE, ROOT, TIME, loadavg, log, sha256
from .defaults import bench_defaults, motion_defaults
from .page import SectionRun, stamp
from .report import write_report
from .results import BenchResult, CorpusInfo, Rerun, from_json, to_json
from .runners import ffmpeg_decode_times
from .sections import bench_model, long_vs_short, motion_agreement, rss_flat
from .setup import (MODELS, by_resolution, git_state, machine, make_corpus, make_motion_set, make_plan,
                    model_configs, now, weights_of)
from .verdicts import notes_for, targets

SECTIONS = ("motion-set", "long", "rss", "defaults")
PARTS = ("multiview", "long", "rss", "motion-set", "defaults")   # of the main benchmark, for --skip
# The sections after the main benchmark (`main`: BENCHMARKS.md), each writing its own page.
PAGES = {"train": train.run, "report-scale": report_scale.run, "embed": embed.run}


def check_tools(vidcls: Path) -> None:
    if not Path(TIME).exists():
        raise SystemExit(f"vbench: {TIME} is needed for peak RSS (Debian package `time`)")
    if not vidcls.exists():
        raise SystemExit(f"vbench: {vidcls} not found (cargo build --release)")
    if not shutil.which("ffmpeg"):
        raise SystemExit("vbench: ffmpeg not found")


def finish(R: BenchResult, out_dir: Path) -> BenchResult:
    """Targets, notes and the report, all from the values as benchmarks.json holds them (rounded),
    so that `report` on that file writes the same page."""
    R = from_json(BenchResult, to_json(R))
    R.targets = targets(R)
    R.notes = notes_for(R)
    write_report(R, out_dir / "BENCHMARKS.md", out_dir / "benchmarks.json")
    stamp(out_dir / "BENCHMARKS.md", R.command or "scripts/bench.sh run", R.machine.git_commit, R.machine.git_dirty)
    return R


def load_result(path: Path) -> BenchResult:
    try:
        return from_json(BenchResult, json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, ValueError) as e:
        raise SystemExit(f"vbench: cannot read {path}: {e}") from None


def cmd_run(args) -> int:
    """The main benchmark, then the other sections, each page into the out dir."""
    check_tools(args.vidcls)
    out_dir = args.out_dir or (CACHE / "quick" if args.quick else ROOT / "docs")
    # The tree as the run starts: the pages the run writes into docs/ make it dirty as it goes.
    source = git_state()
    if source[1] and not args.quick and not args.allow_dirty:
        raise SystemExit("vbench: the tree has uncommitted changes, and a full run's pages name the commit they ran "
                         "at: commit first (or --allow-dirty: the pages then say COMMIT+dirty)")
    command = "scripts/bench.sh " + shlex.join(args.argv)
    chosen = [s for s in (args.only or ["main", *PAGES]) if s not in args.skip]
    t0 = time.perf_counter()
    if "main" in chosen:
        run_main(args, out_dir, command)
    for name in chosen:
        if name in PAGES:
            log(f"section {name}")
            PAGES[name](SectionRun(args.vidcls, out_dir, args.quick, command, source))
    log(f"{', '.join(chosen)}: {(time.perf_counter() - t0) / 60:.1f} min in all")
    return 0


def run_main(args, out_dir: Path, command: str) -> None:
    """BENCHMARKS.md and benchmarks.json."""
    p = make_plan(args.quick)
    models = args.models or p.models
    import torch  # noqa: F401  (the version goes into the report)

    R = BenchResult(quick=args.quick, plan=p, machine=machine(), torch=torch.__version__, load_start=loadavg(),
                    model_threads=os.cpu_count(), command=command)
    log(f"{R.machine.cpu}, {R.machine.logical_cpus} CPUs, load {R.load_start}")
    t_setup = time.perf_counter()
    corpus = make_corpus(p)
    motion_set = None if "motion-set" in args.skip else make_motion_set(p.motion_set_per_class)
    needed = set(models) | ({p.multiview.model} if "multiview" not in args.skip else set()) | {"motion"}
    cfgs = model_configs([m for m in MODELS if m in needed])
    R.setup_seconds = round(time.perf_counter() - t_setup, 1)
    R.motion_sha256 = sha256(weights_of(cfgs["motion"]))
    R.motion_weights = (json.loads(cfgs["motion"].read_text()).get("weights") or {}).get("source")
    R.corpus = CorpusInfo(short=len(corpus.short), short_seconds=p.short_seconds, short_per_res=p.short_per_res,
                          ten_s=len(corpus.ten_s), long=len(corpus.long))
    t_run = time.perf_counter()

    log("ffmpeg: decoding the short clips")
    ff = ffmpeg_decode_times(corpus.short)
    for m in MODELS:
        if m in models:
            files = by_resolution(corpus.short, p.per_model[m])
            R.one_clip[m] = bench_model(m, cfgs[m], files, args.vidcls, ff, p, all_scores=(m == "motion"))
    if "defaults" not in args.skip:
        run_defaults(R, args.vidcls, cfgs, corpus, models, motion_set)
    if "multiview" not in args.skip:
        mv = p.multiview
        files = [f for f in corpus.short if f.name.startswith("640")][: mv.videos]
        R.multiview = bench_model(mv.model, cfgs[mv.model], files, args.vidcls, ff, p, mv.clips, mv.crops)
    if "long" not in args.skip:
        R.long_vs_short = run_long(args.vidcls, cfgs["motion"], corpus, p.long_repeats)
    if "rss" not in args.skip:
        R.rss = rss_flat(args.vidcls, cfgs["motion"], corpus)
    if motion_set is not None:
        R.motion_agreement = motion_agreement(args.vidcls, cfgs["motion"], *motion_set)

    R.seconds = round(time.perf_counter() - t_run, 1)
    R.load_end = loadavg()
    R = finish(R, out_dir)
    log(f"wrote {out_dir / 'BENCHMARKS.md'} and {out_dir / 'benchmarks.json'} ({R.seconds / 60:.1f} min of measurements)")
    for t in R.targets:
        print(f"{'MET   ' if t.met else 'MISSED' if t.met is not None else '  -   '}  {t.target}: {t.measured}")


def run_defaults(R: BenchResult, vidcls: Path, cfgs: dict, corpus, models: list[str], motion_set) -> None:
    """Each model with no speed flags, beside its baselines (issue 12)."""
    R.defaults = {m: bench_defaults(m, cfgs[m], by_resolution(corpus.short, R.plan.per_model[m]), vidcls,
                                    R.plan.model_budget_s)
                  for m in MODELS if m in models}
    if motion_set is not None and "motion" in models:
        R.motion_defaults = motion_defaults(vidcls, cfgs["motion"], motion_set[0])


def run_long(vidcls: Path, config: Path, corpus, repeats: int):
    log("long vs short: ffmpeg full decode")
    ff_long = ffmpeg_decode_times(corpus.ten_s[:1] + corpus.long[:1])
    log("long vs short: vidcls")
    return long_vs_short(vidcls, config, corpus, ff_long, repeats)


def cmd_rerun(args) -> int:
    """One section measured again with the plan of the earlier run, merged into its results."""
    check_tools(args.vidcls)
    R = load_result(args.results)
    start, t0 = loadavg(), time.perf_counter()
    p = R.plan
    cfgs = model_configs(["motion"])
    sha = sha256(weights_of(cfgs["motion"]))
    if sha != R.motion_sha256:
        log(f"note: the motion model file (sha256 {sha[:12]}…) is not the one the rest of {args.results} "
            f"measured ({R.motion_sha256[:12]}…); the section says which one it ran")
    if args.section == "motion-set":
        R.motion_agreement = motion_agreement(args.vidcls, cfgs["motion"], *make_motion_set(p.motion_set_per_class))
    elif args.section == "defaults":
        cfgs = model_configs([m for m in MODELS if m in p.models])
        run_defaults(R, args.vidcls, cfgs, make_corpus(p), p.models, make_motion_set(p.motion_set_per_class))
    elif args.section == "long":
        R.long_vs_short = run_long(args.vidcls, cfgs["motion"], make_corpus(p), p.long_repeats)
    else:
        R.rss = rss_flat(args.vidcls, cfgs["motion"], make_corpus(p))
    commit, dirty = git_state()
    reruns = [r for r in (R.reruns or []) if r.section != args.section]
    reruns.append(Rerun(section=args.section, date=now(), git_commit=commit, git_dirty=dirty, load_start=start,
                        load_end=loadavg(), seconds=round(time.perf_counter() - t0, 1)))
    R.reruns = reruns
    out_dir = args.out_dir or args.results.parent
    finish(R, out_dir)
    log(f"wrote {out_dir / 'BENCHMARKS.md'} and {out_dir / 'benchmarks.json'} with {args.section} measured again")
    return 0


def cmd_report(args) -> int:
    R = load_result(args.results)
    out_dir = args.out_dir or args.results.parent
    finish(R, out_dir)
    log(f"wrote {out_dir / 'BENCHMARKS.md'} from {args.results}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench.sh", description=PACKAGE_DOC.split("\n\n")[0],
                                 epilog=PACKAGE_DOC.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    vidcls = ROOT / "target" / "release" / "vidcls"

    run = sub.add_parser("run", help="the whole benchmark: the main one (BENCHMARKS.md), then the other sections")
    run.add_argument("--quick", action="store_true", help="smoke run: tiny corpus, a few minutes")
    run.add_argument("--out-dir", type=Path,
                     help="where the pages (and benchmarks.json) go (default: docs/, or target/bench/quick with --quick)")
    run.add_argument("--vidcls", type=Path, default=vidcls)
    run.add_argument("--models", nargs="+", choices=MODELS,
                     help="a subset of the models (default: all; with --quick: motion and r2plus1d_18)")
    run.add_argument("--only", nargs="+", choices=["main", *PAGES],
                     help="run only these sections (default: all; main is BENCHMARKS.md)")
    run.add_argument("--skip", nargs="+", default=[], choices=[*PARTS, "main", *PAGES],
                     help="leave these parts of the main benchmark, or these sections, out")
    run.add_argument("--allow-dirty", action="store_true",
                     help="a full run on a tree with uncommitted changes (its pages say COMMIT+dirty)")
    run.set_defaults(func=cmd_run)

    rerun = sub.add_parser("rerun", help="measure one section again and merge it into an earlier run's results")
    rerun.add_argument("section", choices=SECTIONS)
    rerun.add_argument("--results", type=Path, default=ROOT / "docs" / "benchmarks.json",
                       help="the earlier run's benchmarks.json (default: docs/benchmarks.json)")
    rerun.add_argument("--out-dir", type=Path, help="where to write (default: beside --results)")
    rerun.add_argument("--vidcls", type=Path, default=vidcls)
    rerun.set_defaults(func=cmd_rerun)

    report = sub.add_parser("report", help="only rewrite the report (targets, notes, tables) from a benchmarks.json")
    report.add_argument("results", type=Path, nargs="?", default=ROOT / "docs" / "benchmarks.json")
    report.add_argument("--out-dir", type=Path, help="where to write (default: beside the JSON)")
    report.set_defaults(func=cmd_report)

    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
