#!/usr/bin/env bash
# Verify throughput and latency of `consentry serve` on loopback, bounded in time:
# requests/s, p50/p99 and the machine's idle time at concurrency 1, 4, 8 and 16 (wrk, 15 s each),
# and the server's peak RSS.
#   bash bench/load_verify.sh            (needs wrk: apt-get install wrk; cargo build --release)
# With GALLERY=N GALLERY_DIR=DIR it first enrols N people for access from the photos under DIR
# (bench/enrol_many.py), prints the RSS then, and runs identify at the same levels too.
#   GALLERY=10000 GALLERY_DIR=../shared/data/lfw-dev [MODELS=standard] [KEEP_LOG=FILE] bash bench/load_verify.sh
# KEEP_LOG=FILE keeps a copy of the server's log (every request with its status) after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/consentry
PHOTOS="${CONSENTRY_ASSETS:-$HOME/.cache/consentry/assets}/photos"
DIR=$(mktemp -d)
PORT=${PORT:-18181}
DURATION=${DURATION:-15s}
trap 'kill $SERVER 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$DIR/serve.log" "$KEEP_LOG"; rm -rf "$DIR"' EXIT
# MODELS=standard runs the server with the fp32 SFace (its default is standard-int8).
# The load comes from one admin key: its rate limit and the burst rule are raised out of the way.
"$BIN" --models "${MODELS:-standard-int8}" serve --demo --rate-limit admin=100000/100000 --burst-floor 10000000 --listen 127.0.0.1:$PORT --db "sqlite://$DIR/bench.db" > "$DIR/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do grep -q listening "$DIR/serve.log" 2>/dev/null && break; sleep 0.2; done
KEY=$(grep -o 'cs_[0-9a-f]*' "$DIR/serve.log" | head -1)
URL=http://127.0.0.1:$PORT
auth=(-H "Authorization: Bearer $KEY")
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status; }
echo "server RSS at start: $(rss)"
GALLERY=${GALLERY:-0}
if [ "$GALLERY" -gt 0 ]; then
  python3 bench/enrol_many.py "$URL" "$KEY" "${GALLERY_DIR:?set GALLERY_DIR}" "$GALLERY"
  # The first identify loads the tenant's gallery into memory.
  curl -s -o /dev/null -X POST "${auth[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$PHOTOS/obama2.jpg" "$URL/api/v1/identify"
  echo "server RSS with $GALLERY enrolled, gallery loaded: $(rss)"
fi
ID=$(curl -sf -X POST "${auth[@]}" $URL/api/v1/subjects | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
curl -sf -X POST "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"purpose":"verification","retention_days":365}' $URL/api/v1/subjects/$ID/consents > /dev/null
curl -sf -X POST "${auth[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$PHOTOS/obama.jpg" \
  "$URL/api/v1/subjects/$ID/faces?purpose=verification" > /dev/null
# The probe: a 250x250 crop-sized portrait is typical of a kiosk camera frame after cropping;
# we send obama2.jpg as it is (whole pipeline per request: decode, detect, align, embed, match).
cat > "$DIR/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$PHOTOS/obama2.jpg", "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
echo "verify: $(curl -s -X POST "${auth[@]}" -H 'Content-Type: image/jpeg' --data-binary @"$PHOTOS/obama2.jpg" "$URL/api/v1/verify?subject=$ID")"
# The same photo through the pipeline in-process, in this run: the per-request floor the
# HTTP figures are read against (the VMs drift between runs).
echo "pipeline, same photo, 1 thread: $("$BIN" --models "${MODELS:-standard-int8}" bench pipeline "$PHOTOS/obama2.jpg" --repeat 40 --json | python3 -c 'import sys,json; d=json.load(sys.stdin); print("%.1f ms (%s)" % (d["median_ms"], ", ".join("%s %.1f" % kv for kv in d["stage_median_ms"].items())))')"
# served/s counts 2xx answers only; refused counts the 503 `overloaded` answers (the engine
# queue's bound) and any other non-2xx; p50/p99 are over all answers, as wrk measures them.
# idle % is the machine's idle time during the level (/proc/stat), wrk's own share counted busy.
printf '%-10s %-12s %10s %10s %10s %10s %7s\n' call concurrency 'served/s' 'refused/s' 'p50 ms' 'p99 ms' 'idle %'
idle() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
calls="verify"
[ "$GALLERY" -gt 0 ] && calls="verify identify"
for call in $calls; do
  path="/api/v1/verify?subject=$ID"
  [ "$call" = identify ] && path=/api/v1/identify
  for c in 1 4 8 16; do
    t=$(( c < 2 ? 1 : 2 ))
    before=$(idle)
    out=$(wrk -t$t -c$c -d$DURATION --latency -s "$DIR/post.lua" "$URL$path")
    after=$(idle)
    idle_pct=$(python3 -c "a='$before'.split(); b='$after'.split(); print('%.1f' % (100 * (int(b[0]) - int(a[0])) / max(1, int(b[1]) - int(a[1]))))")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    total=$(echo "$out" | awk '/requests in/ {print $1}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    read -r served refused < <(python3 -c "r=$rps; t=$total; n=${non2xx:-0}; print('%.1f %.1f' % (r*(t-n)/t, r*n/t))")
    printf '%-10s %-12s %10s %10s %10s %10s %7s\n' "$call" "$c" "$served" "$refused" "$p50" "$p99" "$idle_pct"
  done
done
echo "server RSS now: $(rss); peak: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)"
