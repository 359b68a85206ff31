#!/usr/bin/env bash
# Frontend suite: Vitest unit tests, the production build (prints first-load JS per route) and the
# end-to-end test in Debian's Chromium against the real backend and the Ollama API stub.
# Needs no docker. Installs Chromium, node packages and the backend venv itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export NEXT_TELEMETRY_DISABLED=1 CI=${CI:-true}

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=9)?0:1)'; then
  echo "test-frontend: node >= 20.9 is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

bash scripts/setup/chromium.sh

# The e2e test runs the real backend: make its venv the same way scripts/test-backend.sh does.
if [[ ! -x backend/.venv/bin/uvicorn ]]; then
  python3 -m venv backend/.venv
fi
PIP_ARGS=(-q --disable-pip-version-check)
if [[ -n ${MUNERO_CACHE:-} && -d ${MUNERO_CACHE:-} ]]; then
  mkdir -p "$MUNERO_CACHE/pip"
  PIP_ARGS+=(--cache-dir "$MUNERO_CACHE/pip")
fi
backend/.venv/bin/python -m pip install "${PIP_ARGS[@]}" -r backend/requirements.txt

cd frontend
NPM_ARGS=(--no-audit --no-fund --loglevel=error)
if [[ -n ${MUNERO_CACHE:-} && -d ${MUNERO_CACHE:-} ]]; then
  mkdir -p "$MUNERO_CACHE/npm"
  NPM_ARGS+=(--cache "$MUNERO_CACHE/npm" --prefer-offline)
fi
npm ci "${NPM_ARGS[@]}"

mkdir -p test-results
unit_log=test-results/unit.log
e2e_log=test-results/e2e.log
rc=0

echo "--- unit tests (vitest)"
npx vitest run 2>&1 | tee "$unit_log" || rc=1

echo "--- production build"
npx next build || { echo "test-frontend: next build failed" >&2; exit 1; }

echo "--- end-to-end test (Chromium)"
node --test --test-reporter=spec --test-reporter-destination=stdout e2e/ 2>&1 | tee "$e2e_log" || rc=1

# The screenshots of each schema at phone and desktop width, for whoever reviews the run.
if compgen -G "test-results/screenshots/*.png" >/dev/null; then
  echo "--- screenshots ($(ls test-results/screenshots/*.png | wc -l) files)"
  ls -1 "$PWD"/test-results/screenshots/*.png
fi

# One plain closing line over both runners.
strip() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
u_pass=$(strip "$unit_log" | sed -n 's/^ *Tests *.* \([0-9][0-9]*\) passed.*/\1/p' | tail -1)
u_fail=$(strip "$unit_log" | sed -n 's/^ *Tests *\([0-9][0-9]*\) failed.*/\1/p' | tail -1)
e_pass=$(strip "$e2e_log" | sed -n 's/^ℹ pass \([0-9][0-9]*\)$/\1/p' | tail -1)
e_fail=$(strip "$e2e_log" | sed -n 's/^ℹ fail \([0-9][0-9]*\)$/\1/p' | tail -1)
passed=$(( ${u_pass:-0} + ${e_pass:-0} ))
failed=$(( ${u_fail:-0} + ${e_fail:-0} ))
if (( rc != 0 && failed == 0 )); then failed=1; fi
echo "frontend: $passed passed, $failed failed"
exit $rc
