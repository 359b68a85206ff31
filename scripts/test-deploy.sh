#!/usr/bin/env bash
# The deploy part of the test suite: `munero-infra deploy` end to end on a real Docker engine,
# with this machine as the trial's host behind a private sshd on 127.0.0.1 (tests/deploy_e2e/run.sh).
# Installs what it needs, idempotently; shares the munero-test/* base images with the stack test
# (built once, keyed by content). Uses $MUNERO_CACHE through scripts/setup/base-images.sh.
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
bash scripts/setup/base-images.sh
bash scripts/setup/sshd.sh
t1=$SECONDS
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --quiet --bin munero-infra
t2=$SECONDS
export MUNERO_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/munero-infra"
echo "[test-deploy] engine, images, sshd ready in $((t1 - t0)) s; binary built in $((t2 - t1)) s"
bash tests/deploy_e2e/run.sh
