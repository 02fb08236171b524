#!/usr/bin/env bash
# Soak berth (issue 16): 32 clients mixing token fetches, authenticated
# manifest GETs and small pushes against one `berth serve`, for
# SOAK_SECONDS (default 600), while the server's RSS is sampled every 10 s.
# Passes (exit 0) with zero errors and a stable RSS: the peak of the last
# quarter of the run at most 1.5x the peak of the first quarter (after a
# warm-up round). Not a timed test: record the numbers in
# docs/performance.md.
#
# With --keep, rss.txt (VmRSS) and rss-split.txt (seconds, RssAnon,
# RssFile, RssShmem) stay in the work directory with the server log.
#
# Usage: bench/soak.sh [--seconds N] [--berth-bin PATH] [--keep]
#   The mix per round (ROUND_SECONDS, default 30), run concurrently:
#     token-issuance          8 connections
#     manifest-get-auth      16 connections
#     blob-push-monolithic    8 parallel 64 KiB pushes
# Every server this script starts is stopped by PID on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOAK_SECONDS="${SOAK_SECONDS:-600}"
ROUND_SECONDS="${ROUND_SECONDS:-30}"
BERTH_BIN=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SOAK_SECONDS="$2"; shift 2 ;;
    --berth-bin) BERTH_BIN="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$BERTH_BIN" ]; then
  (cd "$ROOT" && cargo build --release -p berth --bin berth >&2)
  BERTH_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/berth"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/berth-soak-XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PASSWORD="soak-owner-password-1"
BERTH_BOOTSTRAP_PASSWORD="$PASSWORD" "$BERTH_BIN" serve --listen "127.0.0.1:$PORT" \
  --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
URL="http://127.0.0.1:$PORT"
export BERTH_BENCH_USERNAME=owner BERTH_BENCH_PASSWORD="$PASSWORD"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
: >"$WORK/rss.txt"
# rss-split.txt: seconds, RssAnon, RssFile, RssShmem (KiB) per sample, to
# tell heap growth from mapped files (the database's shared memory index).
rss_split() { awk -v t="$(( $(date +%s) - start ))" '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^RssShmem:/ {s=$2} END {print t, a, f, s}' "/proc/$SERVER_PID/status"; }
: >"$WORK/rss-split.txt"
start=$(date +%s)
( while kill -0 "$SERVER_PID" 2>/dev/null; do rss_kib >>"$WORK/rss.txt" || true; rss_split >>"$WORK/rss-split.txt" || true; sleep 10; done ) &
SAMPLER=$!

round=0
errors=0
start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$SOAK_SECONDS" ]; do
  round=$((round + 1))
  d="${ROUND_SECONDS}s"
  "$BERTH_BIN" bench "$URL" --scenario token-issuance --connections 8 --duration "$d" \
    --output json >"$WORK/token-$round.json" 2>>"$WORK/bench.log" &
  a=$!
  "$BERTH_BIN" bench "$URL" --scenario manifest-get-auth --connections 16 --duration "$d" \
    --output json >"$WORK/manifest-$round.json" 2>>"$WORK/bench.log" &
  b=$!
  round_end=$(( $(date +%s) + ROUND_SECONDS ))
  (
    i=0
    while [ "$(date +%s)" -lt "$round_end" ]; do
      i=$((i + 1))
      "$BERTH_BIN" bench "$URL" --scenario blob-push-parallel --parallel-blobs 8 \
        --parallel-size 64KiB --output json >"$WORK/push-$round-$i.json" 2>>"$WORK/bench.log" || true
    done
  ) &
  c=$!
  for p in $a $b $c; do wait "$p" || true; done
  for f in "$WORK"/token-$round.json "$WORK"/manifest-$round.json "$WORK"/push-$round-*.json; do
    n=$(python3 -c 'import json,sys
r=json.load(open(sys.argv[1]))
print(sum(sum(m.get("errors",0) for m in s.get("measurements",[])) + (1 if s.get("status") == "failed" else 0) for s in r.get("scenarios",[])))' "$f" 2>/dev/null || echo 1)
    errors=$((errors + n))
  done
  echo "round $round: $(( $(date +%s) - start )) s, errors so far $errors, server RSS $(rss_kib) KiB" >&2
done
kill "$SAMPLER" 2>/dev/null || true

python3 - "$WORK/rss.txt" "$errors" "$round" "$SOAK_SECONDS" <<'PY'
import sys
samples = [int(x) for x in open(sys.argv[1]).read().split() if x.strip().isdigit()]
errors, rounds, secs = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
q = max(1, len(samples) // 4)
first = max(samples[1:q + 1] or samples[:1] or [0])
last = max(samples[-q:] or [0])
print(f"soak: {secs} s, {rounds} rounds, 32 clients; errors {errors}; "
      f"server RSS first-quarter peak {first} KiB, last-quarter peak {last} KiB, "
      f"max {max(samples or [0])} KiB over {len(samples)} samples")
ok = errors == 0 and (first == 0 or last <= 1.5 * first)
sys.exit(0 if ok else 1)
PY
