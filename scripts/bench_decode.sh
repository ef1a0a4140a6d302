#!/usr/bin/env bash
# Seek benchmark of the decode stage: times one centre clip of a 10-second and of a 10-minute
# video (made with ffmpeg on first use, kept under target/test-fixtures/decode-bench/) and writes
# the table to docs/DECODE-BENCH.md. The cost should not grow with the video's length.
#
# Usage: scripts/bench_decode.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ffmpeg >/dev/null || { echo "bench_decode.sh: ffmpeg is needed to make the videos" >&2; exit 2; }
mkdir -p docs
cargo test --release --test tests decode::bench_centre_clip -- --ignored --nocapture
echo "wrote docs/DECODE-BENCH.md"
