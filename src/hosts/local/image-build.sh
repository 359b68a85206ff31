#!/usr/bin/env bash
# Builds the local provider's VM image without downloading a cloud image: debootstrap a Debian
# release with a kernel, cloud-init and sshd, write it into an ext4 disk (no loop mount, no
# bootloader: the VM boots the kernel and initrd beside the disk directly), convert it to qcow2.
# Called by `munero-infra image build` with OUT, SUITE, MIRROR, SIZE set; prints progress on
# stderr and the files it made on stdout. Needs root (debootstrap) and debootstrap, e2fsprogs,
# qemu-utils on the host.
set -euo pipefail
: "${OUT:?}" "${SUITE:?}" "${MIRROR:?}" "${SIZE:?}"
log() { printf '[image] %s\n' "$*" >&2; }

work="$OUT/.build"
rm -rf "$work"
mkdir -p "$work"
root="$work/root"
trap 'umount -l "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true' EXIT

log "debootstrap $SUITE from $MIRROR (minbase)"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

log "kernel, init, network, sshd, cloud-init"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
cat >"$root/etc/apt/sources.list" <<SRC
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
SRC
# The kernel's postinst must not try to install a bootloader: the VM boots the kernel directly.
echo 'do_symlinks = yes' >"$root/etc/kernel-img.conf"
chroot "$root" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -q &&
  apt-get install -y -q --no-install-recommends linux-image-cloud-amd64 initramfs-tools systemd-sysv udev dbus \
    ifupdown isc-dhcp-client iproute2 netbase openssh-server sudo curl gnupg cloud-init locales \
    e2fsprogs iptables zstd python3' >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; exit 1; }
echo 'en_US.UTF-8 UTF-8' >"$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null 2>&1
echo 'LANG=en_US.UTF-8' >"$root/etc/default/locale"
# cloud-init reads the NoCloud seed and nothing else: no network probing of metadata services.
cat >"$root/etc/cloud/cloud.cfg.d/90-munero-datasource.cfg" <<CFG
datasource_list: [NoCloud, None]
CFG
# The root file system is the whole virtual disk.
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
# cloud-init and sshd provide the host keys and the logins; the image carries none of either.
rm -f "$root"/etc/ssh/ssh_host_*
chroot "$root" passwd -l root >/dev/null
chroot "$root" apt-get clean
umount -l "$root/proc" "$root/sys" "$root/dev"
trap - EXIT

cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
rm -rf "$root/boot"/initrd.img-*

log "ext4 disk of $SIZE from the tree, then qcow2"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw" "$SIZE"
qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"
rm -rf "$root"
mv -f "$work/disk.qcow2" "$work/vmlinuz" "$work/initrd.img" "$OUT/"
rm -rf "$work"
printf '%s\n' "$OUT/disk.qcow2" "$OUT/vmlinuz" "$OUT/initrd.img"
