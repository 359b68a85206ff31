#!/usr/bin/env bash
# The main job: stand up one trial and put the bundled sample data on it.
#   - with HCLOUD_TOKEN set: create the trial on Hetzner Cloud, then deploy the sample dataset;
#   - with MUNERO_SSH_HOST set (an existing machine, see README): register it and deploy to it;
#   - with no cloud account: print the full create plan (--dry-run), which talks to no API.
# TRIAL (default demo), SSH_FROM (default auto) and DATA (default: the bundled sample) adjust it.
set -euo pipefail
cd "$(dirname "$0")/.."

trial=${TRIAL:-demo}
ssh_from=${SSH_FROM:-auto}

command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup.rs)" >&2; exit 1; }
echo "[main] building munero-infra (release)" >&2
cargo build --release --locked --quiet --bin munero-infra
bin=${CARGO_TARGET_DIR:-target}/release/munero-infra

data_args=()
[ -n "${DATA:-}" ] && data_args=(--data "$DATA")

if [ -n "${HCLOUD_TOKEN:-}" ]; then
  "$bin" create "$trial" --provider hetzner --ssh-from "$ssh_from"
  "$bin" deploy "$trial" "${data_args[@]}"
elif [ -n "${MUNERO_SSH_HOST:-}" ]; then
  : "${MUNERO_SSH_IDENTITY:?set MUNERO_SSH_IDENTITY to the private key that logs in to $MUNERO_SSH_HOST}"
  : "${MUNERO_SSH_HOST_KEY:?set MUNERO_SSH_HOST_KEY to the public host key file of that machine, checked out of band}"
  "$bin" create "$trial" --provider ssh --host "$MUNERO_SSH_HOST" --port "${MUNERO_SSH_PORT:-22}" \
    --user "${MUNERO_SSH_USER:-deploy}" --identity "$MUNERO_SSH_IDENTITY" --host-key "$MUNERO_SSH_HOST_KEY"
  "$bin" deploy "$trial" "${data_args[@]}"
else
  echo "[main] no HCLOUD_TOKEN and no MUNERO_SSH_HOST: printing the plan only (nothing is created)" >&2
  if ! "$bin" create "$trial" --provider hetzner --ssh-from "$ssh_from" --dry-run; then
    if [ "$ssh_from" = auto ]; then
      echo "[main] your public address could not be found; showing the plan for SSH from 192.0.2.10/32 (a documentation address) instead" >&2
      "$bin" create "$trial" --provider hetzner --ssh-from 192.0.2.10/32 --dry-run
    else
      exit 2
    fi
  fi
fi
