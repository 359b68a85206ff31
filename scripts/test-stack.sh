#!/usr/bin/env bash
# The stack part of the test suite: a real Docker engine, registry-free base images, and the
# deploy/ stack proven end to end (tests/stack/run.sh). Installs what it needs, idempotently.
# Uses $MUNERO_CACHE (when set and existing) for the debootstrap tree and saved base images.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v curl >/dev/null || need+=(curl)
command -v ss >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq update
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

t0=$SECONDS
bash scripts/setup/docker.sh
t1=$SECONDS
bash scripts/setup/base-images.sh
t2=$SECONDS
echo "[test-stack] engine ready in $((t1 - t0)) s, base images in $((t2 - t1)) s"
bash tests/stack/run.sh
