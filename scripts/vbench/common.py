"""Paths, logging, timed child processes and small numeric helpers shared by the benchmark."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
CACHE = ROOT / "target" / "bench"
TIME = "/usr/bin/time"
GB = 1024**3

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cache_key(*parts) -> str:
    """A short key for a cache entry from everything that made it (JSON-able parts)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def child_env() -> dict:
    """The environment for `python -m vbench.*` children: scripts/ on the module path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SCRIPTS), env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Timed:
    """A finished child process."""
    stdout: str
    stderr: str
    rc: int
    wall_s: float
    rss: int | None                  # peak resident set size in bytes (/usr/bin/time)
    cpu_s: float | None = None       # user + system CPU seconds, all threads (/usr/bin/time)


def run_timed(cmd: list, stdin: str | None = None, env: dict | None = None) -> Timed:
    """Runs cmd under /usr/bin/time: output, exit status, wall seconds, peak RSS and CPU seconds."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss", delete=False) as f:
        rss_file = f.name
    full = [TIME, "-f", "%M %U %S", "-o", rss_file] + [str(c) for c in cmd]
    t = time.perf_counter()
    p = subprocess.run(full, input=stdin, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    try:
        lines = [ln for ln in Path(rss_file).read_text().splitlines() if ln.strip()]
        kb, user, system = lines[-1].split()
        rss, cpu = int(kb) * 1024, float(user) + float(system)
    except (OSError, ValueError, IndexError):
        rss, cpu = None, None
    finally:
        Path(rss_file).unlink(missing_ok=True)
    return Timed(p.stdout, p.stderr, p.returncode, wall, rss, cpu)


def short_error(stderr: str) -> str:
    """The line of an error output that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        m = re.search(r"(RuntimeError|NotImplementedError|Error): (.*)", ln)
        if m and "Traceback" not in ln:
            return m.group(0)[:300]
    for ln in lines:
        if ln.startswith("vidcls:"):
            return ln[:300]
    return (lines[-1] if lines else "no output")[:300]


def jsonl(text: str) -> list[dict]:
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                out.append(json.loads(ln))
            except json.JSONDecodeError:
                pass
    return out


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


def write_section(doc: Path, begin: str, end: str, text: str, append: bool) -> None:
    """Replaces what lies between the `begin` and `end` markers in `doc` (markers kept) with
    `text`; with no such markers, appends the block when `append`, else exits naming the marker."""
    body = doc.read_text()
    block = f"{begin}\n{text}{end}"
    if begin in body:
        body = body[: body.index(begin)] + block + body[body.index(end) + len(end):]
    elif append:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    else:
        sys.exit(f"{doc.name} has no {begin} marker: run the whole script once")
    doc.write_text(body)


def head_commit() -> str:
    """The short hash of the checkout's HEAD, which the benchmark pages name."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
