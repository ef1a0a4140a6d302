#!/usr/bin/env bash
# How `--format html` scales: labels N videos (the four shipped samples, hard-linked N/4 times
# each) with the built-in model as JSON Lines and as an HTML page, then renders the page's first
# screen with scripts/screenshot_report.sh. Prints a Markdown table and writes it to
# docs/report-scale.md.
#
#   scripts/bench_report.sh [N]        (default 1000)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
n=${1:-1000}
vidcls=$root/target/release/vidcls
[ -x "$vidcls" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/videos"
for i in $(seq 1 $(( (n + 3) / 4 ))); do
  for f in models/samples/*.mp4; do ln "$f" "$work/videos/$(basename "$f" .mp4)_$i.mp4"; done
done
measure() {  # FORMAT -> "seconds max-RSS-MB output-MB"
  /usr/bin/time -f '%e %M' -o "$work/time" \
    "$vidcls" predict -q -j 1 -f "$1" -o "$work/out.$1" "$work/videos/" || [ $? -eq 1 ]
  read -r secs kb <"$work/time"
  echo "$secs $(( kb / 1024 )) $(awk -v b="$(stat -c %s "$work/out.$1")" 'BEGIN{printf "%.1f", b/1e6}')"
}
read -r js_s js_m js_o < <(measure jsonl)
read -r h_s h_m h_o < <(measure html)
t0=$(date +%s.%N)
scripts/screenshot_report.sh "$work/out.html" "$work/page.png" 1200,1600 >/dev/null
render=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
videos=$(ls "$work/videos" | wc -l)
table="| videos | format | seconds | max RSS (MB) | output (MB) |
|---|---|---|---|---|
| $videos | jsonl | $js_s | $js_m | $js_o |
| $videos | html | $h_s | $h_m | $h_o |

Headless Chromium opens the ${h_o} MB page and renders its first screen in ${render} s.
Machine: $(nproc) cores, $(awk '/model name/{sub(/.*: /,""); print; exit}' /proc/cpuinfo)."
printf '%s\n' "$table"
{
  echo "# How the HTML report scales"
  echo
  echo "Made by \`scripts/bench_report.sh $n\`: the four shipped samples hard-linked to $videos"
  echo "inputs, labelled by the built-in model on one decode thread (\`-j 1\`)."
  echo
  printf '%s\n' "$table"
} >docs/report-scale.md
