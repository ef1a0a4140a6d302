"""The head every page the benchmark writes starts with: its `# Title`, then the source marker
(the command that wrote the figures and the commit they ran at; tests/docs.rs parses it), then
one line with the machine, the date and the load at the start and the end of the measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .common import GB, Timed, loadavg, log, run_timed, short_error
from .results import Machine
from .setup import machine

MARKER = "<!-- figures: "


def marker(command: str, commit: str, dirty: bool) -> str:
    """`<!-- figures: `COMMAND` at COMMIT -->`, COMMIT as `git rev-parse --short=7 HEAD` gave it when
    the run started, with `+dirty` when the tree had uncommitted changes."""
    return f"{MARKER}`{command}` at {commit}{'+dirty' if dirty else ''} -->"


def machine_line(m: Machine, load_start: list[float], load_end: list[float]) -> str:
    mem = f", {m.memory_bytes / GB:.1f} GB RAM" if m.memory_bytes else ""
    return (f"Machine: {m.cpu}, {m.logical_cpus} logical CPUs{mem}, Linux {m.kernel}. Date: {m.date}. "
            f"Load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end.")


@dataclass
class SectionRun:
    """What a section needs from `scripts/bench.sh run`: where vidcls is and the page goes, the
    run's size, the command line and the tree's state at the run's start (commit, dirty) for the
    marker, and the machine and load at the section's start."""
    vidcls: Path
    out_dir: Path
    quick: bool
    command: str
    source: tuple[str, bool]
    machine: Machine = field(default_factory=machine)
    load_start: list[float] = field(default_factory=loadavg)

    def write(self, name: str, title: str, body: list[str]) -> Path:
        """Writes out_dir/NAME: the title, the marker, the machine line, then `body`."""
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        head = [f"# {title}", marker(self.command, *self.source), "", machine_line(self.machine, self.load_start, loadavg()), ""]
        path.write_text("\n".join(head + body).rstrip("\n") + "\n")
        log(f"wrote {path}")
        return path


def stamp(path: Path, command: str, commit: str, dirty: bool) -> None:
    """Puts the marker right under the title of a page written elsewhere (BENCHMARKS.md),
    replacing the one already there."""
    lines = path.read_text().split("\n")
    if len(lines) > 1 and lines[1].startswith(MARKER):
        del lines[1]
    lines.insert(1, marker(command, commit, dirty))
    path.write_text("\n".join(lines))


def run_ok(cmd: list, ok_codes: tuple[int, ...] = (0,)) -> Timed:
    """run_timed, exiting with the child's error line when its exit status is not in ok_codes."""
    r = run_timed(cmd)
    if r.rc not in ok_codes:
        raise SystemExit(f"vbench: {' '.join(map(str, cmd[:3]))} ... exited {r.rc}: {short_error(r.stderr)}")
    return r
