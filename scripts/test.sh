#!/usr/bin/env bash
# The whole test suite: set-up if needed, formatting, lints, unit and integration tests.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
export VIDCLS_PYTHON="$root/.venv/bin/python"
# Two tests run at once, and each runs libtorch (vidcls or Python) on every core. OpenMP's
# threads spin while they wait by default, so two such processes on two cores starve each
# other. Waiting threads sleep instead; a process alone runs as fast either way.
export OMP_WAIT_POLICY=PASSIVE
step() { printf '\n==> %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --release --all-targets -- -D warnings
step "cargo test"
# Each test's time comes from libtest's --report-time, which sits behind -Z unstable-options:
# a runner sets RUSTC_BOOTSTRAP for the test binaries only, so nothing is compiled differently.
# (The crate has no doctests; `--doc` still runs them, plainly.)
host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${host}_RUNNER=env RUSTC_BOOTSTRAP=1"
log="$root/target/test-times.log"
status=0
cargo test --release --lib --bins --tests -- -Z unstable-options --report-time 2>&1 |
  tee "$log" || status=$?
[ "$status" -eq 0 ] && { cargo test --release --doc || status=$?; }
step "the ten slowest tests (seconds)"
sed -nE 's/^test (.*) \.\.\. .*<([0-9.]+)s>$/\2 \1/p' "$log" | sort -rn | head -10
exit "$status"
