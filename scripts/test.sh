#!/usr/bin/env bash
# Runs berth's whole test suite on a fresh Debian 12 machine: installs the
# real clients the interop tests drive, checks formatting and lints, then
# runs every test (unit, HTTP integration, interop, crash) with nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# portal: the web portal's browser test drives Debian's headless Chromium
# through chromedriver (crates/berth/tests/portal_browser.rs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (apt)"
  as_root apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need_apt[@]}" >/dev/null
  # The Debian package starts its own registry service on :5000; berth's
  # tests start their own servers, so stop it if it is running.
  as_root systemctl stop docker-registry >/dev/null 2>&1 || true
fi
# PostgreSQL (pg helper): berth-testpg starts private servers from Debian's
# binaries (/usr/lib/postgresql/*/bin) on loopback ports. Debian's own
# cluster is not wanted: do not create it, and stop any that is running.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "==> installing postgresql (apt)"
  as_root mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" |
    as_root tee /etc/postgresql-common/createcluster.d/berth-tests.conf >/dev/null
  as_root apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=900 install -y -qq postgresql >/dev/null
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
    if [ "$status" = online ]; then as_root pg_ctlcluster "$ver" "$name" stop || true; fi
  done
fi
# Real container clients for interop_docker.rs / interop_podman.rs (issue
# 13): Debian's Docker engine (the tests start private dockerd instances
# and stop them by PID; the packaged service stays stopped), podman, and
# containerd's ctr.
need_clients=()
command -v dockerd >/dev/null 2>&1 || need_clients+=(docker.io)
command -v podman >/dev/null 2>&1 || need_clients+=(podman)
command -v ctr >/dev/null 2>&1 || need_clients+=(containerd)
if [ ${#need_clients[@]} -gt 0 ]; then
  echo "==> installing ${need_clients[*]} (apt)"
  as_root apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need_clients[@]}" >/dev/null
  as_root systemctl stop docker docker.socket containerd >/dev/null 2>&1 || true
fi
if ! python3 -c 'import oras' >/dev/null 2>&1; then
  echo "==> installing oras (pip)"
  python3 -m pip install -q oras
fi
# The management API's document is checked by schemathesis
# (crates/berth/tests/api_schemathesis.rs, issue 16).
if ! command -v st >/dev/null 2>&1; then
  echo "==> installing schemathesis (pip)"
  python3 -m pip install -q schemathesis
fi
# --- blob store tests (blob_backends.rs, blob_store_serve.rs): moto's S3
# server, Azurite (3.35.0: the last release whose engines allow Node.js 20)
# and Azure's Python SDK, which creates the Azurite containers.
if ! command -v moto_server >/dev/null 2>&1; then
  echo "==> installing moto[server] (pip)"
  python3 -m pip install -q 'moto[server]'
fi
if ! python3 -c 'import azure.storage.blob' >/dev/null 2>&1; then
  echo "==> installing azure-storage-blob (pip)"
  python3 -m pip install -q azure-storage-blob
fi
if ! command -v azurite-blob >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1; then
    as_root apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=900 install -y -qq npm >/dev/null
  fi
  echo "==> installing azurite (npm)"
  as_root npm install -g --silent azurite@3.35.0 >/dev/null
fi
# --- end blob store tests
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

if [ "${1:-}" = --install-only ]; then
  echo "==> tools installed (--install-only: not running the checks)"
  exit 0
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> tests"
# Every tool above is installed now: a test that finds one missing fails
# instead of skipping (the tests skip only outside this command, with CI
# unset, for a quick local run).
export CI="${CI:-1}"
cargo nextest run --workspace --locked --no-fail-fast "$@"
# The spec HTTP tests and the skopeo, oras and oci-client interop tests a
# second time in the distributed configuration: every server two replicas on
# a private PostgreSQL + moto S3 behind a round-robin proxy (requests
# alternate between replicas). See docs/deployment.md. 110 tests; about
# 9 minutes on a loaded 2-core machine (binaries already built).
if [ "$#" -eq 0 ]; then
  echo "==> tests, distributed (BERTH_TEST_DISTRIBUTED=1)"
  # One retry, for timing on a loaded machine; nextest prints any test that
  # needed it as FLAKY. (A replica that hangs up on a request whose body is
  # still streaming, as after 4 MiB of an oversized manifest, makes the
  # test's proxy hang up on the client too, as a real balancer would.)
  BERTH_TEST_DISTRIBUTED=1 cargo nextest run -p berth --locked --no-fail-fast --retries 1 \
    --test spec_concurrency --test spec_conformance --test spec_discovery \
    --test spec_management --test spec_manifests --test spec_names \
    --test spec_pull --test spec_push --test spec_robustness \
    --test interop_skopeo --test interop_oras --test interop_oci_client
fi
