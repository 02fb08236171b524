#!/usr/bin/env bash
# bench/s3-pull-cpu.sh [BERTH_BIN]: user and system CPU of one proxied
# 256 MiB blob pull from a moto S3 server, berth (--blob-store s3://…,
# streaming) against distribution 2.8 (s3-aws driver, redirect disabled),
# three pulls each. It shows where a proxied pull's CPU goes (the kernel's
# socket copies, the same for both registries); see docs/performance.md
# "Distributed mode". Needs moto_server, docker-registry, curl; uses
# loopback ports 5901-5903. A benchmark script, not a test.
set -euo pipefail
T="$(mktemp -d)"
BERTH="${1:-target/release/berth}"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
unset AWS_CA_BUNDLE || true
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$T"' EXIT
moto_server -H 127.0.0.1 -p 5901 >$T/moto.log 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:5901 && break; sleep 0.2; done
curl -fsS -X PUT http://127.0.0.1:5901/berth-b; curl -fsS -X PUT http://127.0.0.1:5901/dist-b
$BERTH serve --auth-disabled --listen 127.0.0.1:5902 --data-dir $T/berth --blob-store "s3://berth-b/r?endpoint=http://127.0.0.1:5901" >$T/berth.log 2>&1 & BP=$!; PIDS+=($BP)
cat >$T/dist.yml <<Y
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  s3: {region: us-east-1, regionendpoint: "http://127.0.0.1:5901", bucket: dist-b, accesskey: bench, secretkey: bench-secret, forcepathstyle: true, secure: false, v4auth: true, rootdirectory: /registry}
  redirect: {disable: true}
  delete: {enabled: true}
http: {addr: "127.0.0.1:5903"}
Y
/usr/bin/docker-registry serve $T/dist.yml >$T/dist.log 2>&1 & DP=$!; PIDS+=($DP)
for p in 5902 5903; do for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:$p/v2/ && break; sleep 0.2; done; done
head -c 268435456 /dev/urandom >$T/blob
D="sha256:$(sha256sum $T/blob | cut -d' ' -f1)"
tick=$(getconf CLK_TCK)
cpu() { awk -v t=$tick '{print $14/t, $15/t}' /proc/$1/stat; }
for reg in berth:5902:$BP dist:5903:$DP; do
  IFS=: read name port pid <<<"$reg"
  loc=$(curl -fsS -D - -o /dev/null -X POST "http://127.0.0.1:$port/v2/t/blobs/uploads/" | awk -F': ' 'tolower($1)=="location"{print $2}' | tr -d '\r')
  case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc";; esac
  sep='?'; [[ "$loc" == *\?* ]] && sep='&'
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @$T/blob "$loc${sep}digest=$D"
  for i in 1 2 3; do
    read u0 s0 < <(cpu $pid)
    r=$(curl -fsS -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/v2/t/blobs/$D")
    read u1 s1 < <(cpu $pid)
    echo "$name pull $i: $(awk -v r=$r 'BEGIN{printf "%.0f MiB/s", r/1048576}') user $(awk -v a=$u0 -v b=$u1 'BEGIN{printf "%.2f", b-a}') s sys $(awk -v a=$s0 -v b=$s1 'BEGIN{printf "%.2f", b-a}') s"
  done
done
