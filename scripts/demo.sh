#!/usr/bin/env bash
# Set-up if needed, build, and label the shipped sample clips with the built-in default model.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
printf '\n==> cargo build --release\n' >&2
cargo build --release
printf '\n==> vidcls predict models/samples/ (built-in motion model; each file is named after its action)\n' >&2
target/release/vidcls predict models/samples/ --top-k 3
