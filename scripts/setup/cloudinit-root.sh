#!/usr/bin/env bash
# A chroot with cloud-init installed, used ONLY to run `cloud-init schema --config-file` on the
# rendered user-data (never install cloud-init on the host: it enables boot services).
#
#   debootstrap --variant=minbase trixie  ->  apt-get install cloud-init inside the chroot
#   (a policy-rc.d forbids starting services; nothing is mounted)
#
# Location: $MUNERO_CLOUDINIT_ROOT, else $MUNERO_CACHE/cloudinit-root when MUNERO_CACHE is set and
# exists, else /var/tmp/munero-cloudinit-root. Idempotent: a root whose stamp matches is reused.
# Prints the root's path as the last line of stdout.
set -euo pipefail

SUITE=${CLOUDINIT_ROOT_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [[ -n ${MUNERO_CLOUDINIT_ROOT:-} ]]; then
  ROOT=$MUNERO_CLOUDINIT_ROOT
elif [[ -n ${MUNERO_CACHE:-} && -d ${MUNERO_CACHE:-} ]]; then
  ROOT=$MUNERO_CACHE/cloudinit-root
else
  ROOT=/var/tmp/munero-cloudinit-root
fi
STAMP="$ROOT/.munero-cloudinit-root"
WANT="suite=$SUITE v1"

log() { printf '[cloudinit-root] %s\n' "$*" >&2; }

if [[ -f $STAMP && "$(cat "$STAMP")" == "$WANT" ]] && chroot "$ROOT" cloud-init --version >/dev/null 2>&1; then
  log "reusing $ROOT ($(chroot "$ROOT" cloud-init --version 2>&1 | head -n1))"
  echo "$ROOT"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

log "building $ROOT (debootstrap --variant=minbase $SUITE, then cloud-init)"
rm -rf "$ROOT.tmp"
mkdir -p "$(dirname "$ROOT")"
debootstrap --variant=minbase "$SUITE" "$ROOT.tmp" "$MIRROR" >"$ROOT.tmp.log" 2>&1 || {
  tail -n 30 "$ROOT.tmp.log" >&2
  exit 1
}
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT.tmp/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT.tmp/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT.tmp/etc/resolv.conf" 2>/dev/null || true
chroot "$ROOT.tmp" env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get install -y -q --no-install-recommends cloud-init \
  >>"$ROOT.tmp.log" 2>&1 || {
  tail -n 30 "$ROOT.tmp.log" >&2
  exit 1
}
chroot "$ROOT.tmp" apt-get clean
rm -rf "$ROOT"
mv "$ROOT.tmp" "$ROOT"
rm -f "$ROOT.tmp.log"
echo "$WANT" >"$STAMP"
log "ready: $ROOT ($(chroot "$ROOT" cloud-init --version 2>&1 | head -n1))"
echo "$ROOT"
