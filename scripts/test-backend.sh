#!/usr/bin/env bash
# Backend test suite: venv at backend/.venv, pinned requirements, pytest. No docker needed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

if ! "$PY" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  # Debian's python3 needs python3-venv for ensurepip; 3.11+ is needed (sqlite3 setlimit).
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
fi

VENV="$ROOT/backend/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP_ARGS=(-q --disable-pip-version-check)
if [ -n "${MUNERO_CACHE:-}" ] && [ -d "${MUNERO_CACHE}" ]; then
  mkdir -p "$MUNERO_CACHE/pip"
  PIP_ARGS+=(--cache-dir "$MUNERO_CACHE/pip")
fi
"$VENV/bin/python" -m pip install "${PIP_ARGS[@]}" -r backend/requirements.txt -r backend/requirements-dev.txt

set +e
"$VENV/bin/python" -m pytest backend/tests -q -p no:cacheprovider "$@"
rc=$?
set -e
exit $rc
