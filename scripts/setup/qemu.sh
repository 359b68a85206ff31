#!/usr/bin/env bash
# QEMU for the local provider and its VM image build: qemu-system-x86, qemu-utils, genisoimage,
# debootstrap, e2fsprogs. Debian's qemu-system-x86 and qemu-utils come as a matching pair (a
# newer qemu-utils from backports conflicts with bookworm's qemu-system-x86, so both are taken
# from the same release). Idempotent; run as root.
set -euo pipefail
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v genisoimage >/dev/null || need+=(genisoimage)
[ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v mkfs.ext4 >/dev/null || [ -x /sbin/mkfs.ext4 ] || need+=(e2fsprogs)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Installing qemu-system-x86 may remove a qemu-utils of another release: put the matching one back.
command -v qemu-img >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq qemu-utils >/dev/null; }
qemu-system-x86_64 --version | head -n1
