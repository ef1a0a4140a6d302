#!/usr/bin/env bash
# The whole test suite: set-up if needed, formatting, lints, unit and integration tests.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
export VIDCLS_PYTHON="$root/.venv/bin/python"
step() { printf '\n==> %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --release --all-targets -- -D warnings
step "cargo test"
cargo test --release
