#!/usr/bin/env bash
# The VM part of the test suite: the whole chain on a real local VM (`--provider local`, QEMU)
# booted from an image built here (`munero-infra image build`, reused while its inputs do not
# change; kept in $MUNERO_CACHE when there is one). Installs what it needs, idempotently, and
# shares the munero-test/* images with the stack and deploy parts.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$SECONDS
bash scripts/setup/qemu.sh
bash scripts/setup/docker.sh
bash scripts/setup/base-images.sh
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --quiet --bin munero-infra
export MUNERO_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/munero-infra"
t1=$SECONDS
if [[ -n ${MUNERO_CACHE:-} && -d ${MUNERO_CACHE:-} ]]; then
    export VM_IMAGE="$MUNERO_CACHE/vm-image"
else
    export VM_IMAGE=/var/tmp/munero-vm-image
fi
"$MUNERO_BIN" image build --out "$VM_IMAGE" </dev/null
t2=$SECONDS
echo "[test-vm] qemu, engine, images and binary ready in $((t1 - t0)) s; VM image ready in $((t2 - t1)) s"
bash tests/vm_e2e/run.sh
