#!/usr/bin/env bash
# The host tools the shell-driven Docker suites (stack, deploy) probe with: curl for HTTPS checks,
# ss for listening ports, python3 for JSON. Installed only when missing.
set -euo pipefail

need=()
command -v curl >/dev/null || need+=(curl)
command -v ss >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq update
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
