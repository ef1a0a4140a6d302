#!/usr/bin/env bash
# Makes docs/report.png, the README's picture of `--format html`: the shipped samples and one
# video made of all four back to back, labelled with --segments by the built-in model, rendered
# by scripts/screenshot_report.sh and reduced to a 128-colour palette. Prints the commands and
# the file's size.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
vidcls=$root/${VIDCLS:-target/release/vidcls}
[ -x "$vidcls" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
samples=(models/samples/move_right.mp4 models/samples/move_up.mp4 models/samples/rotate_ccw.mp4
         models/samples/zoom_in.mp4)
inputs=() chain=""
for i in "${!samples[@]}"; do
  inputs+=(-i "${samples[$i]}")
  chain+="[$i:v]scale=192:144,fps=20,setsar=1[v$i];"
done
ffmpeg -v error -y "${inputs[@]}" \
  -filter_complex "${chain}[v0][v1][v2][v3]concat=n=4:v=1[out]" -map "[out]" \
  -c:v libx264 -pix_fmt yuv420p "$work/four_actions.mp4"
cp -r models/samples "$work/samples"
set -x
(cd "$work" && "$vidcls" predict -q -f html -o report.html --segments --window 1 --hop 0.5 \
  four_actions.mp4 samples/)
scripts/screenshot_report.sh "$work/report.html" "$work/full.png" 1000,1150 >/dev/null
ffmpeg -v error -y -i "$work/full.png" \
  -vf "split[a][b];[a]palettegen=max_colors=128[p];[b][p]paletteuse=dither=none" docs/report.png
set +x
echo "docs/report.png: $(stat -c %s docs/report.png) bytes"
