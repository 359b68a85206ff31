#!/usr/bin/env bash
# The deploy part of the test suite: `munero-infra deploy` end to end on a real Docker engine,
# with this machine as the trial's host behind a private sshd on 127.0.0.1 (tests/deploy_e2e/run.sh).
# Installs what it needs, idempotently; shares the munero-test/* base images with the stack test
# (built once, keyed by content). Uses $MUNERO_CACHE through scripts/setup/base-images.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup/probe-tools.sh

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
