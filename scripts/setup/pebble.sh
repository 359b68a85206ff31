#!/usr/bin/env bash
# Installs Pebble, the ACME test CA, and its challenge test server (pebble-challtestsrv) from the
# Debian archive, for the ACME test (tests/acme_pebble.rs starts its own instances on loopback).
# Idempotent; run as root.
set -euo pipefail

if ! command -v pebble >/dev/null || ! command -v pebble-challtestsrv >/dev/null || ! command -v openssl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends pebble openssl >/dev/null
fi
printf 'pebble %s\n' "$(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '(not from a package)')"
