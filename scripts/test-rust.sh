#!/usr/bin/env bash
# Rust part of the test suite: the munero-infra workspace (unit + integration tests against the
# Hetzner API fake behind Prism and against moto for AWS, and the cloud-init schema check in a
# chroot), plus the fake's own self-test. Installs what it needs itself; honours CARGO_TARGET_DIR and MUNERO_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test-rust] %s\n' "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: the Rust toolchain is required"; exit 1; }
command -v python3 >/dev/null || { log "python3 not found"; exit 1; }

# Prism for the contract check in front of the fake (owned by the fake's author).
log "installing Prism"
bash scripts/setup/prism.sh

# OpenSSH server binaries for the ssh/deploy tests (they start their own sshd on 127.0.0.1), and
# zstd, which the upload tests' host helper runs on this machine.
if [[ -f scripts/setup/sshd.sh ]]; then
  log "installing openssh-server for the ssh tests"
  bash scripts/setup/sshd.sh
fi

# A Docker engine: destroying an existing host takes its compose stack down on that host (here
# the sshd fixture's, i.e. this machine), and a host whose engine does not answer keeps its record.
log "installing and starting the Docker engine"
bash scripts/setup/docker.sh

# Pebble (the ACME test CA) for the certificate flow of the stack's Caddy.
log "installing pebble"
bash scripts/setup/pebble.sh

# crontab and systemd-analyze for the scheduled-teardown tests.
log "installing cron"
bash scripts/setup/cron.sh

# A real Caddy for the Basic Auth tests (add/rotate/revoke applied by `caddy reload`).
log "installing caddy"
MUNERO_CADDY_BIN=$(bash scripts/setup/caddy.sh | tail -n1)
export MUNERO_CADDY_BIN

# A chroot with cloud-init for `cloud-init schema` (never installed on the host). The schema
# test must really run here, so its absence is a failure, not a skip.
log "preparing the cloud-init chroot"
MUNERO_CLOUDINIT_ROOT=$(bash scripts/setup/cloudinit-root.sh | tail -n1)
export MUNERO_CLOUDINIT_ROOT MUNERO_REQUIRE_CLOUDINIT_ROOT=1

# moto (the EC2 emulator) for the AWS provider tests, in a venv; in CI its absence fails them.
log "installing moto"
MUNERO_MOTO_SERVER=$(bash scripts/setup/moto.sh | tail -n1)
export MUNERO_MOTO_SERVER

status=0

log "Hetzner fake self-test"
if ! python3 tests/hetzner_fake/test_fake.py; then
  log "Hetzner fake self-test FAILED"
  status=1
fi

log "building the workspace"
cargo build --workspace --locked --all-targets

if command -v cargo-nextest >/dev/null 2>&1; then
  log "cargo nextest run --workspace"
  # Tests mostly wait on the fake and Prism: three at a time keeps 2 cores busy, not swamped.
  if ! cargo nextest run --workspace --locked --test-threads 3 --no-fail-fast --failure-output final; then
    status=1
  fi
  # (nextest runs no doctests; the workspace has none.)
else
  log "cargo test --workspace"
  if ! cargo test --workspace --locked --no-fail-fast -- --test-threads 3; then status=1; fi
fi

if ((status)); then log "Rust tests FAILED"; else log "Rust tests passed"; fi
exit $status
