#!/usr/bin/env bash
# Renders an HTML report (vidcls predict --format html) in headless Chromium and writes a PNG
# screenshot of its first WIDTHxHEIGHT pixels. Fails when the page logs anything to the browser
# console: a script error ("Uncaught ..."), or a script, style or picture that the page's
# Content-Security-Policy refused.
#
#   scripts/screenshot_report.sh REPORT.html OUT.png [WIDTH,HEIGHT]    (default 1200,1600)
#
# Chromium comes from Debian's `chromium` package (scripts/setup.sh installs it).
set -euo pipefail

die() { printf 'screenshot_report: %s\n' "$*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]"
[ -f "$1" ] || die "$1: no such file"
page=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1200,1600}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || die "chromium not found: run scripts/setup.sh (apt-get install chromium)"

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --disable-gpu --no-first-run --no-default-browser-check --hide-scrollbars
       --user-data-dir="$profile" --window-size="$size" --enable-logging=stderr --v=0)
# Chromium's sandbox refuses to start as root (containers, CI).
[ "$(id -u)" -ne 0 ] || flags+=(--no-sandbox)
rm -f "$out"
if ! timeout 120 "$browser" "${flags[@]}" --screenshot="$out" "file://$page" 2>"$profile/log"; then
  cat "$profile/log" >&2
  die "chromium failed on $page"
fi
[ -s "$out" ] || { cat "$profile/log" >&2; die "chromium wrote no screenshot"; }
if grep -E ':CONSOLE[:(]|Uncaught|Refused to' "$profile/log" >&2; then
  die "$page logged to the console (above)"
fi
echo "$out"
