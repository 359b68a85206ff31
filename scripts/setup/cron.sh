#!/usr/bin/env bash
# Installs cron's `crontab` for the scheduled-teardown tests (the crontab fallback where systemd
# does not run). No cron daemon is started. Idempotent; run as root.
set -euo pipefail
if ! command -v crontab >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends cron >/dev/null
fi
command -v systemd-analyze >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null; }
echo "crontab: $(command -v crontab); systemd-analyze: $(command -v systemd-analyze)"
