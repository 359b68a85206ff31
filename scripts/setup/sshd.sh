#!/usr/bin/env bash
# Installs the OpenSSH server used as a test fixture (tests start their own sshd on 127.0.0.1
# with their own config, host key and authorized_keys; no system sshd is started here).
# The fixture's "host" is this machine, so it also gets what a trial host has for compressed and
# delta uploads: zstd (python3 is already here). Idempotent; run as root.
set -euo pipefail

if [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/lib/openssh/sftp-server ] || ! command -v ssh-keygen >/dev/null \
   || ! command -v scp >/dev/null || ! command -v sha256sum >/dev/null || ! command -v zstd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d keeps the package scripts from starting a system-wide sshd on port 22.
  had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ "$had_policy" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openssh-server openssh-sftp-server openssh-client coreutils zstd >/dev/null
  if [ "$had_policy" = 0 ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
fi
# Privilege separation directory sshd insists on.
mkdir -p /run/sshd
chmod 755 /run/sshd
/usr/sbin/sshd -V 2>&1 | head -n1 || true
