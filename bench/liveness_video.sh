#!/usr/bin/env bash
# The active check's table in docs/liveness.md: every clip against the challenges asked of it,
# one line each (clip, challenge, pass, passive median, what the judge saw).
#
#   bash bench/liveness_video.sh [--model PROFILE]
#
# The real and replayed clips are ../shared/data/liveness-video (not shippable); the attack
# clips are made here with ffmpeg: obama.jpg held still, shaken (translated) and rotated (±20°)
# in the frame, and 40 NUAA printed-photo frames of subject 0003 at 10 fps
# (../shared/data/nuaa-dev). Run `python3 setup/fetch.py` and `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/consentry
DATA=../shared/data
PHOTO=${CONSENTRY_ASSETS:-$HOME/.cache/consentry/assets}/photos/obama.jpg
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 640×480 frames at 10 fps, as a webcam gives them.
ff() { ffmpeg -loglevel error -y "$@"; }
ff -loop 1 -i "$PHOTO" -t 4 -r 10 -vf "scale=-2:400,pad=640:480:(ow-iw)/2:(oh-ih)/2" \
  -pix_fmt yuv420p "$TMP/still.mp4"
ff -loop 1 -i "$PHOTO" -t 4 -r 10 -vf "scale=-2:400,pad=720:560:(ow-iw)/2:(oh-ih)/2,\
crop=640:480:40+40*sin(2*PI*t):40+30*cos(3*PI*t)" -pix_fmt yuv420p "$TMP/shaken.mp4"
ff -loop 1 -i "$PHOTO" -t 4 -r 10 -vf "scale=-2:400,pad=640:480:(ow-iw)/2:(oh-ih)/2,\
rotate=0.35*sin(2*PI*t/2):fillcolor=black" -pix_fmt yuv420p "$TMP/rotated.mp4"
mkdir "$TMP/nuaa"
i=0
for f in $(ls "$DATA"/nuaa-dev/attack/0003/*.jpg | head -40); do
  cp "$f" "$(printf '%s/nuaa/%03d.jpg' "$TMP" "$i")"
  i=$((i + 1))
done
ff -framerate 10 -i "$TMP/nuaa/%03d.jpg" -pix_fmt yuv420p "$TMP/nuaa.mp4"

V=$DATA/liveness-video
while read -r clip challenges; do
  for c in ${challenges//;/ }; do
    "$BIN" pad video "$clip" --challenge "$c" --json "$@" 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin)
seen = ', '.join(f\"{e['action']} {e['t']:.1f} s\" for e in d.get('events', []))
print(f\"{sys.argv[1]:32} {sys.argv[2]:12} pass={d['pass']!s:5} passive={d['passive_median']:.3f} \"
      f\"fails={[k for k, v in d['checks'].items() if not v]} seen=[{seen}]\")" "$(basename "$clip")" "$c"
  done
done <<EOF
$V/real_blinks_65s.mp4 blink
$V/real_head_turn_unlabelled.mp4 left,right
$V/replay_attack_head_turn.mp4 blink,right;right,left;up;left,right;left;blink
$TMP/still.mp4 blink;left;right,left
$TMP/shaken.mp4 blink;left;right,left
$TMP/rotated.mp4 blink;left;right,left
$TMP/nuaa.mp4 blink;left;right,left
EOF
