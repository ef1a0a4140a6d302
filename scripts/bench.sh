#!/usr/bin/env bash
# The benchmark harness: builds the release binary, then runs the scripts/vbench package, which
# writes docs/BENCHMARKS.md and docs/benchmarks.json (vidcls against the Python pipeline and the
# compute bound), then docs/TRAINING-BENCH.md, docs/report-scale.md and docs/EMBED-BENCH.md
# (with --quick: a smoke run of each, written under target/bench/quick/). Each page names, under
# its title, the command that wrote it and the commit it ran at.
#
# Usage: scripts/bench.sh [run] [--quick] [--only SECTION...] [options]   the whole benchmark
#        scripts/bench.sh rerun motion-set|long|rss       one section again, merged into docs/
#        scripts/bench.sh report [JSON]                   rewrite BENCHMARKS.md from the JSON
#        scripts/bench.sh --help                          (and scripts/bench.sh run --help)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--" ] && shift
PY=.venv/bin/python
[ -x "$PY" ] || { echo "bench.sh: $PY not found (run scripts/setup.sh)" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "bench.sh: ffmpeg is needed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench.sh: /usr/bin/time is needed (Debian package time)" >&2; exit 2; }
case "${1:-}" in
    run|rerun|report|-h|--help) ;;
    *) set -- run "$@" ;;
esac
if [ -z "${BENCH_NO_BUILD:-}" ] && [ "$1" != report ] && [ "$1" != -h ] && [ "$1" != --help ]; then
    cargo build --release --quiet
fi
PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m vbench "$@"
