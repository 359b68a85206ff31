#!/usr/bin/env bash
# The stack part of the test suite: a real Docker engine, registry-free base images, and the
# deploy/ stack proven end to end (tests/stack/run.sh). Installs what it needs, idempotently.
# Uses $MUNERO_CACHE (when set and existing) for the debootstrap tree and saved base images.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup/probe-tools.sh

t0=$SECONDS
bash scripts/setup/docker.sh
t1=$SECONDS
bash scripts/setup/base-images.sh
t2=$SECONDS
echo "[test-stack] engine ready in $((t1 - t0)) s, base images in $((t2 - t1)) s"
bash tests/stack/run.sh
