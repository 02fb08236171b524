#!/usr/bin/env bash
# Compare berth with the CNCF distribution registry (Debian's docker-registry,
# distribution 2.8) on this machine, over loopback, with the same `berth bench`
# scenarios run against both, interleaved.
#
# Usage: bench/compare.sh [--quick] [--rounds N] [--scenario NAME]... [--keep]
#                         [--only distribution|berth] [--drop-caches] [--tls]
#                         [--berth-arg ARG]... [-- extra berth-bench flags]
#   --quick     tiny sizes and short durations (checks the script, not the servers)
#   --rounds N  repeat the whole interleaved sequence N times (default 1)
#   --scenario  restrict to these scenarios (repeatable; default: all)
#   --only X    measure only one registry (e.g. before `berth serve` exists)
#   --keep      keep the temp dir (registry data dirs and logs)
#   --drop-caches  empty the page cache before every timed pull (root):
#               pulls read the disk for both registries
#   --tls       both registries serve HTTPS with one self-signed certificate
#               (the bench client accepts it with --insecure)
#   --no-auth-round  skip round 2 (berth's token service, berth alone)
#   --berth-arg ARG  extra flag for `berth serve` (repeatable), e.g.
#               --berth-arg --upload-io=buffered
#   --out DIR   where results go (default /tmp/berth-compare-results-<time>)
#   --report-only DIR   re-render the tables from the JSON files in DIR
#   --berth-bin PATH    use this berth binary instead of building one
#   --storage s3        distributed mode: both registries keep blobs on one
#               moto S3 server started here (berth --blob-store s3://…,
#               distribution's s3-aws driver), buckets berth-bench-berth
#               and berth-bench-distribution; berth keeps its metadata in a
#               private PostgreSQL server started here (Debian's
#               postgresql binaries, --database-url), a fresh database
#               each round
#   --redirect          with --storage s3: both registries answer blob GETs
#               with a redirect to a presigned S3 URL (distribution's s3
#               default; berth --blob-redirect), so the client pulls from
#               S3 itself. Without it both stream the bytes through
#               themselves (berth's default; distribution with
#               `redirect: disable: true`), which is what is compared.
#   --replicas N        with --storage s3: N berth replicas on that one
#               database and bucket, behind nginx (Debian's package, started
#               here, round-robin, no stickiness); berth's CPU is summed over
#               the replicas (nginx's own is not counted), its RSS is the
#               largest replica's
# Data directories live under $TMPDIR (default /tmp); TMPDIR=/dev/shm puts
# both registries on tmpfs, taking the disk out of the comparison.
# Results: a table on stdout, and $OUT/results.md + one JSON report per run.
#
# Every server this script starts is stopped by PID on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
QUICK=0
ROUNDS=1
KEEP=0
ONLY=""
OUT=""
SCENARIOS=()
EXTRA=()
REPORT_ONLY=""
BERTH_BIN=""
STORAGE=file
DROP_CACHES=0
NO_AUTH_ROUND=0
TLS=0
BERTH_ARGS=()
REPLICAS=1
REDIRECT=0
BERTH_REPLICA_PIDS=()
NGINX_PID=""

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS="$2"; shift ;;
    --scenario) SCENARIOS+=("$2"); shift ;;
    --keep) KEEP=1 ;;
    --only) ONLY="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --report-only) REPORT_ONLY="$2"; shift ;;
    --berth-bin) BERTH_BIN="$2"; shift ;;
    --storage) STORAGE="$2"; shift ;;
    --drop-caches) DROP_CACHES=1 ;;
    --tls) TLS=1 ;;
    --berth-arg) BERTH_ARGS+=("$2"); shift ;;
    --no-auth-round) NO_AUTH_ROUND=1 ;;
    --replicas) REPLICAS="$2"; shift ;;
    --redirect) REDIRECT=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,45p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

if [ ${#SCENARIOS[@]} -eq 0 ]; then
  SCENARIOS=(blob-push-monolithic blob-push-chunked blob-push-parallel
             blob-pull-monolithic blob-pull-chunked blob-pull-parallel
             image-push image-pull ci-push-pull manifest-get manifest-head tags-list
             token-issuance manifest-get-auth)
fi

SIZE_ARGS=()
if [ "$QUICK" = 1 ]; then
  SIZE_ARGS=(--blob-size 8MiB --chunk-size 2MiB --parallel-blobs 4 --parallel-size 2MiB
             --layers 5 --layer-min-size 64KiB --layer-max-size 1MiB --images 2
             --duration 500ms --connections 1,8 --tags 300)
fi

say() { printf '\n== %s\n' "$*" >&2; }

case "$REPLICAS" in ''|*[!0-9]*|0) echo "--replicas must be a positive number" >&2; exit 2 ;; esac
if [ "$REDIRECT" = 1 ] && [ "$STORAGE" != s3 ]; then
  echo "--redirect needs --storage s3" >&2; exit 2
fi
if [ "$REPLICAS" -gt 1 ]; then
  [ "$STORAGE" = s3 ] || { echo "--replicas needs --storage s3 (replicas share one database and blob store)" >&2; exit 2; }
  [ "$TLS" = 0 ] || { echo "--replicas with --tls is not supported (nginx would terminate TLS, not berth)" >&2; exit 2; }
fi

if [ "$DROP_CACHES" = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "--drop-caches needs root (it writes /proc/sys/vm/drop_caches)" >&2; exit 2; }
  EXTRA+=(--drop-caches)
fi
SCHEME=http
if [ "$TLS" = 1 ]; then
  SCHEME=https
  EXTRA+=(--insecure)
fi

# --- comparison --------------------------------------------------------------
render() {
  for t in "${TARGETS[@]}"; do
    jq -s '.' "$OUT/$t"-*.json >"$OUT/all-$t.json" 2>/dev/null || echo '[]' >"$OUT/all-$t.json"
  done
  [ -f "$OUT/all-distribution.json" ] || echo '[]' >"$OUT/all-distribution.json"
  [ -f "$OUT/all-berth.json" ] || echo '[]' >"$OUT/all-berth.json"

  jq -r -n --slurpfile d "$OUT/all-distribution.json" --slurpfile b "$OUT/all-berth.json" \
     --arg order "$(IFS=,; echo "${SCENARIOS[*]}")" '
    # Measurements keyed by scenario|case|concurrency, averaged over rounds.
    def rows($reports):
      [ $reports[] | .scenarios[] | . as $s
        | if .status == "ok" then
            (.measurements[] | {key: "\($s.scenario)|\(.name)|\(.concurrency // "")", m: .})
          else {key: "\($s.scenario)|\(.status)|", m: {note: (.message // .status)}} end ]
      | group_by(.key)
      | map({key: .[0].key, value: (
          if .[0].m.note then .[0].m else
          { mib_s: ([.[].m.bytes_per_s] | add / length / 1048576),
            time: ([.[].m.duration_s] | add / length),
            ops_s: ([.[].m.requests_per_s] | add / length),
            p50: ([.[].m.latency.p50_ms // 0] | add / length),
            p99: ([.[].m.latency.p99_ms // 0] | add / length),
            errors: ([.[].m.errors] | add),
            rss: ([.[].m.server.peak_rss_bytes // 0] | max / 1048576),
            cpu: ([.[].m.server.cpu_seconds // 0] | add / length),
            cli: ([.[].m.client_cpu_s] | add / length) } end)})
      | from_entries;
    def f: if . == null then "-" elif (type == "number") then (. * 100 | round / 100 | tostring) else tostring end;
    def ratio($a; $b): if ($a|type) == "number" and ($b|type) == "number" and $a != 0 then ($b / $a * 100 | round / 100 | tostring) else "-" end;
    ($order | split(",")) as $names
    | (rows($d[0])) as $D | (rows($b[0])) as $B
    | (["scenario", "case", "conc", "metric", "distribution", "berth", "berth/dist"] | @tsv),
      ( ([$D, $B] | map(keys) | add | unique
          | sort_by(split("|") as $p | [($names | index($p[0])) // 99, $p[1], ($p[2] | tonumber? // 0)]))[] as $k
        | ($k | split("|")) as $p
        | ($D[$k] // {}) as $x | ($B[$k] // {}) as $y
        | if ($x.note or $y.note) then [$p[0], "", "", "note", ($x.note // "-"), ($y.note // "-"), ""] | @tsv
          else
            ( (if ($p[0] | test("^(blob|image|ci)-")) then
                 [["MiB/s", "mib_s"], ["time s", "time"], ["errors", "errors"], ["srv peak RSS MiB", "rss"], ["srv CPU s", "cpu"], ["client CPU s", "cli"]]
               elif $p[0] == "tags-list" then
                 [["ops/s", "ops_s"], ["time s", "time"], ["p50 ms", "p50"], ["p99 ms", "p99"], ["errors", "errors"],
                  ["srv peak RSS MiB", "rss"], ["srv CPU s", "cpu"], ["client CPU s", "cli"]]
               else
                 [["ops/s", "ops_s"], ["p50 ms", "p50"], ["p99 ms", "p99"], ["errors", "errors"],
                  ["srv peak RSS MiB", "rss"], ["srv CPU s", "cpu"], ["client CPU s", "cli"]]
               end)[]
              | [$p[0], $p[1], $p[2], .[0], ($x[.[1]] | f), ($y[.[1]] | f), ratio($x[.[1]]; $y[.[1]])] | @tsv )
          end )
  ' >"$OUT/results.tsv"

  column -t -s $'\t' "$OUT/results.tsv"
  {
    echo "| scenario | case | conc | metric | distribution | berth | berth ÷ distribution |"
    echo "|---|---|---|---|---|---|---|"
    tail -n +2 "$OUT/results.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}'
  } >"$OUT/results.md"
  echo >&2
  echo "markdown table: $OUT/results.md (paste into docs/performance.md)" >&2

}

if [ -n "$REPORT_ONLY" ]; then OUT="$REPORT_ONLY"; TARGETS=(distribution berth); render; exit 0; fi

# --- prerequisites -----------------------------------------------------------
need_apt() {
  local pkg="$1"
  say "installing Debian package $pkg"
  if [ "$(id -u)" != 0 ]; then echo "need root to apt-get install $pkg" >&2; exit 1; fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
}
if [ "$ONLY" != berth ] && [ ! -x /usr/bin/docker-registry ]; then need_apt docker-registry; fi
command -v jq >/dev/null || need_apt jq
if [ "$REPLICAS" -gt 1 ] && [ ! -x /usr/sbin/nginx ]; then need_apt nginx; fi
command -v curl >/dev/null || need_apt curl

BERTH="${BERTH_BIN:-$TARGET_DIR/release/berth}"
if [ "$ONLY" != distribution ] && [ -z "$BERTH_BIN" ]; then
  say "building berth (release)"
  (cd "$ROOT" && cargo build --release -p berth >&2)
fi
if [ -x "$BERTH" ] && "$BERTH" bench --help 2>/dev/null | grep -q -- --server-pid; then
  BENCH=("$BERTH" bench)
else
  say "building the bench runner (release)"
  (cd "$ROOT" && cargo build --release -p berth-bench --example bench >&2)
  echo "note: \`berth bench\` is not available; using the berth-bench example binary" >&2
  BENCH=("$TARGET_DIR/release/examples/bench")
fi
if [ "$ONLY" != distribution ] && ! "$BERTH" serve --help 2>/dev/null | grep -q -- --data-dir; then
  echo "note: \`berth serve\` is not available yet; measuring distribution only" >&2
  ONLY=distribution
fi

# --- servers -----------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/berth-compare.XXXXXX")"
[ -n "$OUT" ] || OUT="/tmp/berth-compare-results-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 0 ]; then rm -rf "$TMP" "${PG_DIR:-}"; else echo "kept: $TMP ${PG_DIR:-}" >&2; fi
  echo "results: $OUT" >&2
}
trap cleanup EXIT

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

wait_ready() {
  local url="$1" log="$2"
  for _ in $(seq 1 200); do
    code="$(curl -sk -o /dev/null -w '%{http_code}' "$url/v2/" || true)"
    if [ "$code" = 200 ] || [ "$code" = 401 ]; then return 0; fi
    sleep 0.1
  done
  echo "server at $url did not come up; log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

declare -A URL PID SERVER_PIDS
# --tls: one self-signed certificate for 127.0.0.1, used by both registries.
TLS_CERT="" TLS_KEY=""
if [ "$TLS" = 1 ]; then
  TLS_CERT="$TMP/tls-cert.pem" TLS_KEY="$TMP/tls-key.pem"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TLS_KEY" -out "$TLS_CERT" >/dev/null 2>&1
fi
# Distributed mode: one moto S3 server for both registries (started once,
# stopped by PID on exit with the others); each round gets fresh buckets.
S3_URL=""
if [ "$STORAGE" = s3 ]; then
  command -v moto_server >/dev/null || { echo "--storage s3 needs moto_server (pip install 'moto[server]')" >&2; exit 2; }
  s3_port="$(free_port)"
  moto_server -H 127.0.0.1 -p "$s3_port" >"$TMP/moto.log" 2>&1 &
  PIDS+=("$!")
  S3_URL="http://127.0.0.1:$s3_port"
  for _ in $(seq 1 100); do curl -s -o /dev/null "$S3_URL" && break; sleep 0.2; done
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
  # distribution's aws-sdk-go panics on AWS_CA_BUNDLE with its own HTTP
  # transport ("LoadCustomCABundleError"); moto is plain HTTP here anyway.
  unset AWS_CA_BUNDLE
  # berth's metadata: a private PostgreSQL (as root, its commands run as the
  # postgres user, whom initdb requires; its directory is outside $TMP,
  # which only root may enter).
  if [ "$ONLY" != distribution ]; then
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -x "$PG_BIN/initdb" ] || need_apt postgresql
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    PG_DIR="$(mktemp -d /tmp/berth-compare-pg.XXXXXX)"
    as_pg=()
    if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; as_pg=(runuser -u postgres --); fi
    "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U berth >"$TMP/pg-initdb.log" 2>&1
    pg_port="$(free_port)"
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
      -o "-p $pg_port -h 127.0.0.1 -k $PG_DIR -c fsync=on -c max_connections=100" start >/dev/null
    PIDS+=("$(head -n 1 "$PG_DIR/data/postmaster.pid")")
    PG_URL="postgres://berth@127.0.0.1:$pg_port"
  fi
elif [ "$STORAGE" != file ]; then
  echo "--storage must be file or s3" >&2; exit 2
fi
s3_bucket() { # fresh bucket $1 (deleting any old one's objects would cost more than a new name)
  curl -fsS -o /dev/null -X PUT "$S3_URL/$1"
}
ROUND_TAG=0
# (Re)start both servers on fresh data directories. Each round starts
# afresh, so a run of several rounds needs no more disk than one (a full
# round stores ~16 GiB across the two registries).
start_servers() {
  ROUND_TAG=$((ROUND_TAG + 1))
  if [ "$ONLY" != berth ]; then
    port="$(free_port)"
    mkdir -p "$TMP/distribution"
    if [ "$STORAGE" = s3 ]; then
      s3_bucket "berth-bench-distribution-$ROUND_TAG"
      storage_driver="  s3:
    region: us-east-1
    regionendpoint: $S3_URL
    bucket: berth-bench-distribution-$ROUND_TAG
    accesskey: $AWS_ACCESS_KEY_ID
    secretkey: $AWS_SECRET_ACCESS_KEY
    forcepathstyle: true
    secure: false
    v4auth: true
    rootdirectory: /registry"
      if [ "$REDIRECT" = 0 ]; then
        storage_driver+="
  redirect:
    disable: true"
      fi
    else
      storage_driver="  filesystem:
    rootdirectory: $TMP/distribution/data"
    fi
    cat >"$TMP/distribution/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
$storage_driver
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
EOF
    if [ "$TLS" = 1 ]; then
      printf '  tls:\n    certificate: %s\n    key: %s\n' "$TLS_CERT" "$TLS_KEY" >>"$TMP/distribution/config.yml"
    fi
    /usr/bin/docker-registry serve "$TMP/distribution/config.yml" >"$TMP/distribution/log" 2>&1 &
    PID[distribution]=$!; PIDS+=("$!")
    URL[distribution]="$SCHEME://127.0.0.1:$port"
    wait_ready "${URL[distribution]}" "$TMP/distribution/log"
  fi
  if [ "$ONLY" != distribution ]; then
    port="$(free_port)"
    mkdir -p "$TMP/berth"
    # Round 1 compares both servers without authentication (distribution's
    # default), so berth runs with --auth-disabled here; round 2 measures
    # berth's token service and bearer-authenticated reads.
    store_args=("${BERTH_ARGS[@]}")
    [ "$TLS" = 0 ] || store_args+=(--tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")
    if [ "$STORAGE" = s3 ]; then
      s3_bucket "berth-bench-berth-$ROUND_TAG"
      store_args+=(--blob-store "s3://berth-bench-berth-$ROUND_TAG/registry?endpoint=$S3_URL")
      [ "$REDIRECT" = 0 ] || store_args+=(--blob-redirect)
      "$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U berth "berth_$ROUND_TAG"
      store_args+=(--database-url "$PG_URL/berth_$ROUND_TAG")
    fi
    if [ "$REPLICAS" = 1 ]; then
      "$BERTH" serve --auth-disabled --listen "127.0.0.1:$port" --data-dir "$TMP/berth/data" \
        "${store_args[@]}" >"$TMP/berth/log" 2>&1 &
      PID[berth]=$!; PIDS+=("$!")
      SERVER_PIDS[berth]=$!
      URL[berth]="$SCHEME://127.0.0.1:$port"
      wait_ready "${URL[berth]}" "$TMP/berth/log"
    else
      # N replicas on one database and bucket, each with its own data
      # directory, behind nginx on $port (their login server, so Location
      # headers name the balancer).
      local r rport upstreams="" pids=()
      for r in $(seq 1 "$REPLICAS"); do
        rport="$(free_port)"
        "$BERTH" serve --auth-disabled --listen "127.0.0.1:$rport" --data-dir "$TMP/berth/data-$r" \
          --login-server "127.0.0.1:$port" "${store_args[@]}" >"$TMP/berth/log-$r" 2>&1 &
        pids+=("$!"); PIDS+=("$!")
        wait_ready "http://127.0.0.1:$rport" "$TMP/berth/log-$r"
        upstreams+="    server 127.0.0.1:$rport;
"
      done
      mkdir -p "$TMP/berth/nginx-body" "$TMP/berth/nginx-proxy"
      cat >"$TMP/berth/nginx.conf" <<NGINX
worker_processes 2;
pid $TMP/berth/nginx.pid;
error_log $TMP/berth/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/berth/nginx-body;
  proxy_temp_path $TMP/berth/nginx-proxy;
  fastcgi_temp_path $TMP/berth/nginx-proxy;
  uwsgi_temp_path $TMP/berth/nginx-proxy;
  scgi_temp_path $TMP/berth/nginx-proxy;
  upstream berth {
$upstreams    keepalive 128;
  }
  server {
    listen 127.0.0.1:$port;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    # Unbuffered proxying moves bytes through one buffer of this size per
    # request; the default (one page) means a read and a write per 4 KiB.
    proxy_buffer_size 128k;
    proxy_buffers 4 128k;
    proxy_busy_buffers_size 256k;
    client_body_buffer_size 128k;
    proxy_read_timeout 900s;
    proxy_send_timeout 900s;
    location / {
      proxy_pass http://berth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
    }
  }
}
NGINX
      /usr/sbin/nginx -c "$TMP/berth/nginx.conf" -g 'daemon off;' >"$TMP/berth/log" 2>&1 &
      NGINX_PID=$!; PIDS+=("$!")
      PID[berth]="${pids[0]}"
      BERTH_REPLICA_PIDS=("${pids[@]}")
      SERVER_PIDS[berth]="$(IFS=,; echo "${pids[*]}")"
      URL[berth]="http://127.0.0.1:$port"
      wait_ready "${URL[berth]}" "$TMP/berth/log"
    fi
  fi
}

stop_servers() {
  local t p
  for p in "${BERTH_REPLICA_PIDS[@]}" "$NGINX_PID"; do
    [ -n "$p" ] || continue
    [ "$p" = "${PID[berth]:-}" ] && continue
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  BERTH_REPLICA_PIDS=(); NGINX_PID=""
  for t in distribution berth; do
    [ -n "${PID[$t]:-}" ] || continue
    kill "${PID[$t]}" 2>/dev/null || true
    wait "${PID[$t]}" 2>/dev/null || true
    rm -rf "$TMP/$t"
  done
}

start_servers

TARGETS=()
[ "$ONLY" = berth ] || TARGETS+=(distribution)
[ "$ONLY" = distribution ] || TARGETS+=(berth)

# --- reference numbers -------------------------------------------------------
say "machine"
{
  echo "cpus: $(nproc)  model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "sha_ni: $(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)"
  # Last line: "sha256  <N>k" = thousands of bytes per second on one core.
  sha_k="$(openssl speed -seconds 2 -bytes 16384 -evp sha256 2>/dev/null | tail -n 1 | awk '{print $NF}' | tr -d k)"
  echo "openssl speed -evp sha256 (one core, 16 KiB blocks): $(awk -v k="$sha_k" 'BEGIN{printf "%.0f MB/s", k/1000}')"
  # The device's own sequential write speed where the data directories
  # are: every pushed byte must reach it before the push is acknowledged
  # (berth fsyncs), so it caps push throughput as SHA-256 does.
  dd_out="$(dd if=/dev/zero of="$TMP/dd-probe" bs=4M count=256 oflag=direct 2>&1 | tail -n 1 || true)"
  rm -f "$TMP/dd-probe"
  echo "disk write, 1 GiB in 4 MiB O_DIRECT blocks (dd): $(echo "$dd_out" | awk -F', ' '{print $NF}')"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "distribution: $(/usr/bin/docker-registry --version 2>/dev/null || echo n/a)"
  echo "berth: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} | tee "$OUT/machine.txt" >&2

# --- interleaved runs --------------------------------------------------------
run_one() {
  local target="$1" scenario="$2" round="$3"
  local file="$OUT/$target-$scenario-r$round.json"
  echo "   $scenario @ $target" >&2
  if ! "${BENCH[@]}" "${URL[$target]}" --scenario "$scenario" --output json \
      --server-pid "${SERVER_PIDS[$target]:-${PID[$target]}}" "${SIZE_ARGS[@]}" "${EXTRA[@]}" >"$file" 2>"$file.err"; then
    # A run with errors still writes its report; an empty file means it failed outright.
    [ -s "$file" ] || { echo "     failed: $(tail -n 1 "$file.err")" >&2; rm -f "$file"; }
  fi
  [ -s "$file.err" ] || rm -f "$file.err"
}

say "round 1: no auth"
for round in $(seq 1 "$ROUNDS"); do
  if [ "$round" -gt 1 ]; then stop_servers; start_servers; fi
  i=0
  for s in "${SCENARIOS[@]}"; do
    # Alternate which server goes first so neither always gets the warm cache.
    if [ $((i % 2)) = 0 ]; then order=("${TARGETS[@]}"); else
      order=(); for ((j=${#TARGETS[@]}-1; j>=0; j--)); do order+=("${TARGETS[$j]}"); done; fi
    for t in "${order[@]}"; do run_one "$t" "$s" "$round"; done
    i=$((i + 1))
  done
done

# === ROUND 2: BERTH WITH AUTH ================================================
# berth with authentication on (its default) and its bootstrap Owner: token
# issuance (Basic and refresh-token grants) and bearer-authenticated manifest
# GET against the anonymous rate. distribution 2.8 has no token service of its
# own, so this round measures berth alone (see docs/performance.md).
if [ "$ONLY" != distribution ] && [ "$NO_AUTH_ROUND" = 0 ]; then
  say "round 2: berth with auth"
  port="$(free_port)"
  mkdir -p "$TMP/berth-auth"
  BENCH_PASSWORD="bench-$(date +%s)-$RANDOM"
  BERTH_BOOTSTRAP_PASSWORD="$BENCH_PASSWORD" "$BERTH" serve --listen "127.0.0.1:$port" \
    --data-dir "$TMP/berth-auth/data" >"$TMP/berth-auth/log" 2>&1 &
  PID[berth-auth]=$!; PIDS+=("$!")
  URL[berth-auth]="http://127.0.0.1:$port"
  wait_ready "${URL[berth-auth]}" "$TMP/berth-auth/log"
  # Anonymous pull on, so manifest-get-auth measures its anonymous baseline
  # on the same server (authenticated clients still present their token).
  dir_token="$(curl -fsS -d grant_type=password -d username=owner \
      --data-urlencode "password=$BENCH_PASSWORD" "${URL[berth-auth]}/directory/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
  curl -fsS -o /dev/null -X PATCH -H "Authorization: Bearer $dir_token" \
    -H 'Content-Type: application/json' -d '{"anonymousPullEnabled":true}' \
    "${URL[berth-auth]}/api/v1/registry"
  export BERTH_BENCH_USERNAME=owner BERTH_BENCH_PASSWORD="$BENCH_PASSWORD"
  for round in $(seq 1 "$ROUNDS"); do
    for s in token-issuance manifest-get-auth; do run_one berth-auth "$s" "$round"; done
  done
  unset BERTH_BENCH_USERNAME BERTH_BENCH_PASSWORD
  echo "   round 2 results (berth only): $OUT/berth-auth-*.json" >&2
fi

# --- comparison --------------------------------------------------------------
say "results"
render
