#!/usr/bin/env bash
# The release-bundle test, apart from scripts/test.sh because it builds the bundle (a `dist`
# build of vidcls, several minutes the first time, then the archive): scripts/package.sh cpu,
# installed outside the checkout, run with the checkout and the Python environment hidden
# (needs root for `unshare -m`); then the container image made from that bundle
# (scripts/test-container.sh). CI runs it as a step after scripts/test.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
export VIDCLS_PYTHON="$root/.venv/bin/python"
printf '\n==> cargo test --release package:: -- --include-ignored\n' >&2
cargo test --release package:: -- --include-ignored
# The container image, built from the bundle that test made and checked (tests/package.rs
# leaves it in its scratch folder).
printf '\n==> scripts/test-container.sh\n' >&2
scripts/test-container.sh target/test-scratch/package-dist/vidcls-*-linux-x86_64-cpu.tar.gz
