"""What a benchmark run measured, as typed values; benchmarks.json is their JSON form.

Every result is a dataclass. `to_json` writes it (fields marked `opt()` are left out while None,
fields marked `mem()` stay in memory only, floats are rounded to 5 digits) and `from_json` reads
it back, refusing keys the types do not know, so `report` can rewrite BENCHMARKS.md from the JSON
of an earlier run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


def opt(default=None):
    """A field written to JSON only when it is not None."""
    return field(default=default, metadata={"omit_none": True})


def mem():
    """A field that stays in memory (per-path maps for agreement counts), never in the JSON."""
    return field(default=None, metadata={"json": False})


# ---------------------------------------------------------------------------------------------
# The run's set-up.


@dataclass
class MultiviewPlan:
    model: str
    videos: int
    clips: int
    crops: int


@dataclass
class Plan:
    """Corpus and workload sizes."""
    short_per_res: int
    short_seconds: int
    ten_s: int
    long: int
    models: list[str]
    per_model: dict[str, int]
    multiview: MultiviewPlan
    model_budget_s: float
    rss_counts: list[int]
    motion_set_per_class: int
    long_repeats: int


@dataclass
class Machine:
    cpu: str
    logical_cpus: int | None
    avx512_bf16: bool
    amx_bf16: bool
    memory_bytes: int | None
    kernel: str
    date: str
    git_commit: str
    git_dirty: bool
    ffmpeg: str


@dataclass
class CorpusInfo:
    short: int
    short_seconds: int
    short_per_res: int
    ten_s: int
    long: int


# ---------------------------------------------------------------------------------------------
# One measurement.


@dataclass
class Agreement:
    n: int
    same: int
    rate: float | None


@dataclass
class ToolRun:
    """One tool (vidcls or the Python pipeline) on a list of files."""
    tool: str
    precision: str
    batch_size: int
    clips: int
    crops: int
    inputs: int
    ok: int
    failed: int
    exit: int
    wall_s: float
    peak_rss_bytes: int | None
    error: str | None = opt()
    videos_per_s: float | None = opt()
    views_per_s: float | None = opt()
    clips_per_s: float | None = opt()
    startup_s: float | None = opt()
    decode_ms: float | None = opt()
    preprocess_ms: float | None = opt()
    model_ms: float | None = opt()
    top1: dict[str, int] | None = mem()


@dataclass
class VidclsRun(ToolRun):
    """`vidcls predict`: the pipeline's seconds from its run summary, per-video times."""
    pipeline_s: float | None = opt()
    cpu_s: float | None = opt()
    ran: dict[str, Any] | None = opt()
    per_video_ms: list[float] | None = opt()
    decode_pre_ms: list[float] | None = opt()
    top1_list: list[int] | None = mem()
    scores_list: list[Any] | None = mem()
    paths: list[str] | None = mem()


@dataclass
class PythonRun(ToolRun):
    """scripts/reference_predict.py: the sum of its per-video times."""
    loop_s: float | None = opt()


@dataclass
class Throughput:
    """The model alone over a list of batch sizes (or why it could not run)."""
    views: int | None = opt()
    batches_run: int | None = opt()
    batches_planned: int | None = opt()
    seconds: float | None = opt()
    views_per_s: float | None = opt()
    batch_ms: list[float] | None = opt()
    cpu_seconds: float | None = opt()
    error: str | None = opt()


@dataclass
class ModelSetup:
    """How the model alone was run: the process and the input's shape."""
    tool: str
    precision: str
    peak_rss_bytes: int | None
    wall_s: float
    batch_sizes: list[int]
    threads: int | None = opt()
    torch: str | None = opt()
    frames: int | None = opt()
    crop: int | None = opt()


@dataclass
class ModelRun(Throughput, ModelSetup):
    """The TorchScript model alone on random input (what vbench.model_alone prints, plus the
    process's peak RSS and wall time). Dataclass fields follow the bases in reverse order, so the
    JSON keeps ModelSetup's fields, then Throughput's, then `autocast`."""
    autocast: Throughput | None = opt()


@dataclass
class PrecisionRuns:
    vidcls: VidclsRun
    python: PythonRun
    model: ModelRun
    load: list[float]
    vidcls_vs_python: float | None
    vidcls_vs_model: float | None
    vidcls_python_top1_agreement: Agreement | None = opt()
    # `python` seeks like vidcls (the headline); `python_full` decodes every frame (second row).
    python_full: PythonRun | None = opt()
    vidcls_vs_python_full: float | None = opt()


@dataclass
class StageSummary:
    """A vidcls run kept only for its rate, stage times and memory."""
    videos_per_s: float | None
    decode_ms: float | None
    preprocess_ms: float | None
    model_ms: float | None
    peak_rss_bytes: int | None
    error: str | None


@dataclass
class ModelSummary:
    views_per_s: float | None
    batches_run: int | None
    error: str | None


@dataclass
class Batch1:
    vidcls: StageSummary
    model: ModelSummary
    vidcls_vs_model: float | None
    vidcls_vs_python: float | None
    vs_default_batch: float | None


@dataclass
class Speedup:
    vidcls: float | None
    python: float | None
    model: float | None
    model_autocast: float | None


@dataclass
class FfmpegSummary:
    tool: str
    inputs: int
    seconds: float
    videos_per_s: float | None
    clips_per_s: float | None


@dataclass
class ModelBench:
    """One model at one views-per-video setting: vidcls, python and the model alone, per precision."""
    model: str
    config: str
    videos: int
    clips: int
    crops: int
    batch_size: int
    files: list[str]
    ffmpeg: FfmpegSummary
    runs: dict[str, PrecisionRuns]
    bf16_speedup: Speedup | None = None
    vidcls_threads2_fp32: StageSummary | None = opt()
    batch1: dict[str, Batch1] | None = opt()
    bf16_top1_agreement: Agreement | None = opt()


@dataclass
class LongVsShort:
    model: str
    precision: str
    batch_size: int
    runs: int
    exit: int
    ffmpeg_full_decode_s: dict[str, float]
    error: str | None = opt()
    per_video_ms: dict[str, list[float]] | None = opt()
    decode_pre_ms: dict[str, list[float]] | None = opt()
    median_ms: dict[str, float] | None = opt()
    median_decode_pre_ms: dict[str, float] | None = opt()
    decode_pre_ratio: float | None = opt()
    ratio: float | None = opt()


@dataclass
class RssRun:
    inputs: int
    ok: int
    failed: int
    exit: int
    wall_s: float
    videos_per_s: float | None
    error: str | None
    peak_rss_bytes: int
    peak_rss_each: list[int | None]


@dataclass
class Rss:
    model: str
    precision: str
    batch_size: int
    runs: dict[str, RssRun]
    ratio: float | None = None
    spread_small: float | None = None
    growth_mb_per_100_videos: float | None = None


@dataclass
class MotionRun:
    ok: int
    failed: int
    exit: int
    videos_per_s: float | None
    peak_rss_bytes: int | None
    error: str | None
    decode_ms: float | None
    preprocess_ms: float | None
    model_ms: float | None
    accuracy: float | None = opt()


@dataclass
class MotionSet:
    """What made a generated motion set (its cache key is all of this)."""
    seed: int
    n_per_class: int
    style: str
    generator_sha256: str


@dataclass
class MotionAgreement:
    set: str | None = opt()
    videos: int | None = opt()
    runs: dict[str, MotionRun] | None = opt()
    top1_agreement: Agreement | None = opt()
    max_abs_score_diff: float | None = opt()
    generator: MotionSet | None = opt()
    model_sha256: str | None = opt()
    skipped: str | None = opt()


@dataclass
class DecodeAlone:
    """vidcls with a stand-in model that only averages its input (`vbench.defaults`)."""
    videos: int
    cpu_s: float | None
    startup_cpu_s: float | None
    pipeline_s: float | None
    error: str | None = opt()
    cpu_ms_per_video: float | None = opt()


@dataclass
class DefaultsBench:
    """`vidcls predict -m MODEL` with no speed flags, and what it is measured against."""
    model: str
    videos: int
    cores: int
    vidcls: VidclsRun
    python_fp32: PythonRun
    model_alone: ModelRun
    decode: DecodeAlone
    vs_python: float | None
    top1_vs_python_fp32: Agreement | None = opt()
    python_full_fp32: PythonRun | None = opt()
    vs_python_full: float | None = opt()
    export_record: dict[str, Any] | None = opt()
    model_cpu_ms_per_video: float | None = opt()
    e2e_ms_per_video: float | None = opt()
    bound_ms_per_video: float | None = opt()
    efficiency: float | None = opt()
    levers: dict[str, StageSummary] | None = opt()


@dataclass
class MotionDefaults:
    set: str
    videos: int
    ran: dict[str, Any] | None = opt()
    default_videos_per_s: float | None = opt()
    fp32_videos_per_s: float | None = opt()
    top1_agreement: Agreement | None = opt()
    error: str | None = opt()


@dataclass
class Target:
    target: str
    measured: str
    met: bool | None
    met_for: list[str] | None = opt()
    values: dict[str, float | None] | None = opt()
    note: str | None = opt()
    agreement: float | None = opt()


@dataclass
class Rerun:
    """A section measured again on its own after the full run."""
    section: str
    date: str
    git_commit: str
    git_dirty: bool
    load_start: list[float]
    load_end: list[float]
    seconds: float


@dataclass
class BenchResult:
    quick: bool
    plan: Plan
    machine: Machine
    torch: str
    load_start: list[float]
    model_threads: int | None
    setup_seconds: float = 0.0
    motion_sha256: str = ""
    motion_weights: str | None = None
    corpus: CorpusInfo | None = None
    one_clip: dict[str, ModelBench] = field(default_factory=dict)
    multiview: ModelBench | None = opt()
    long_vs_short: LongVsShort | None = opt()
    rss: Rss | None = opt()
    motion_agreement: MotionAgreement | None = opt()
    defaults: dict[str, DefaultsBench] | None = opt()
    motion_defaults: MotionDefaults | None = opt()
    seconds: float = 0.0
    load_end: list[float] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reruns: list[Rerun] | None = opt()
    command: str | None = opt()       # the scripts/bench.sh command line that made the run


# ---------------------------------------------------------------------------------------------
# JSON.


def to_json(x):
    """A result as plain JSON values."""
    if dataclasses.is_dataclass(x):
        out = {}
        for f in dataclasses.fields(x):
            v = getattr(x, f.name)
            if f.metadata.get("json") is False or (f.metadata.get("omit_none") and v is None):
                continue
            out[f.name] = to_json(v)
        return out
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, float):
        return round(x, 5)
    return x


def from_json(cls, data):
    """Reads what `to_json` wrote back into `cls` (a dataclass or a typing form)."""
    return _load(cls, data, cls.__name__ if isinstance(cls, type) else str(cls))


def _load(tp, data, where: str):
    if tp is Any:
        return data
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if len(args) == 1:
            return _load(args[0], data, where)
        for a in args:                      # float | None etc.: the first that fits
            if a in (int, float, str, bool) and isinstance(data, a):
                return data
        if int in args or float in args:
            return data
        raise ValueError(f"{where}: cannot read {data!r} as {tp}")
    if origin is list:
        (a,) = typing.get_args(tp)
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected a list, got {data!r}")
        return [_load(a, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        _, a = typing.get_args(tp)
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, got {data!r}")
        return {k: _load(a, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object for {tp.__name__}, got {data!r}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{where}: {tp.__name__} has no field(s) {', '.join(sorted(unknown))}")
        kwargs = {k: _load(hints[k], v, f"{where}.{k}") for k, v in data.items()}
        try:
            return tp(**kwargs)
        except TypeError as e:
            raise ValueError(f"{where}: {e}") from None
    if tp is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if tp in (int, float, str, bool) and not isinstance(data, tp):
        raise ValueError(f"{where}: expected {tp.__name__}, got {data!r}")
    return data
