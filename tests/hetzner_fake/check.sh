#!/usr/bin/env bash
# Self-test of the Hetzner API fake, directly and through Prism (contract check); runnable from any
# directory. Installs Prism first (idempotent). Prints "N passed, N failed, N skipped" last and
# exits non-zero on any failure. Without ../shared/specs/hcloud-openapi.json beside the repo the
# Prism tests are skipped with "contract check skipped: spec not found at ...".
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup/prism.sh
exec python3 tests/hetzner_fake/test_fake.py
