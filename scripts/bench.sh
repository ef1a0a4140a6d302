#!/usr/bin/env bash
# Benchmark of vidcls against the Python pipeline and the compute bound (issue 7): builds the
# release binary, then runs scripts/bench.py, which writes docs/BENCHMARKS.md and
# docs/benchmarks.json (with --quick: a smoke run written under target/bench/quick/).
#
# Usage: scripts/bench.sh [--quick] [bench.py options]   (scripts/bench.sh -- --help for them)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--" ] && shift
PY=.venv/bin/python
[ -x "$PY" ] || { echo "bench.sh: $PY not found (run scripts/setup.sh)" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "bench.sh: ffmpeg is needed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is needed (Debian package time)" >&2; exit 2; }
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    cargo build --release --quiet
fi
exec "$PY" scripts/bench.py "$@"
