#!/usr/bin/env bash
# Installs everything vidcls needs to build, test and run on Debian 12, idempotently:
#   1. Debian packages: FFmpeg development libraries and CLI, pkg-config, clang/libclang;
#      chromium (the tests render the HTML report headless) and fonts-dejavu-core (the font
#      `vidcls annotate` draws labels with).
#   2. A Python environment with libtorch (pinned torch wheel), torchvision, PyAV and numpy,
#      cached under ${XDG_CACHE_HOME:-$HOME/.cache}/vidcls/ and keyed by the requirements' hash.
#   3. Links .venv (that environment) and .libtorch (its torch package) into the repository;
#      .cargo/config.toml points tch's build at .libtorch unless LIBTORCH is set.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages -------------------------------------------------------------------
debs=(ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
      libavfilter-dev libavdevice-dev pkg-config clang libclang-dev python3 python3-venv ca-certificates
      time chromium fonts-dejavu-core)
debs+=(slurm-wlm munge)   # tests/slurm.rs runs the README's job array on scripts/slurm-local.sh
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root to install: apt-get install ${missing[*]}"
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || die "apt-get update failed (network or sources.list?)"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
else
  say "Debian packages present"
fi

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) and re-run"

# --- 2. Python environment with libtorch ----------------------------------------------------
req="$root/scripts/requirements.txt"
hash=$(sha256sum "$req" | cut -c1-16)
cache="${VIDCLS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vidcls}"
env="$cache/pyenv-$hash"
mkdir -p "$cache" || die "cannot create cache directory $cache"
exec 9>"$cache/.setup.lock"
flock 9   # one setup at a time per cache (parallel clones or CI jobs)
if [ -f "$env/.complete" ]; then
  say "Python environment cached: $env"
else
  say "creating Python environment $env (torch wheels are several GB; this happens once)"
  rm -rf "$env"
  python3 -m venv "$env" || die "python3 -m venv failed: install python3-venv"
  "$env/bin/python" -m pip install -q --upgrade pip || die "pip upgrade failed"
  "$env/bin/python" -m pip install -q --progress-bar off -r "$req" \
    || { rm -rf "$env"; die "pip install -r $req failed (network to PyPI?)"; }
  touch "$env/.complete"
fi

torch_dir=$("$env/bin/python" -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).parent)') \
  || die "torch does not import from $env; delete it and re-run"
[ -d "$torch_dir/lib" ] && [ -d "$torch_dir/include" ] || die "$torch_dir has no lib/ or include/"
ln -sfn "$env" "$root/.venv"
ln -sfn "$torch_dir" "$root/.libtorch"
say "libtorch: $torch_dir ($("$env/bin/python" -c 'import torch; print(torch.__version__)'))"
say "done"
