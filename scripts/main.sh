#!/usr/bin/env bash
# The main job: stand up one trial and put the bundled sample data on it.
#   - with HCLOUD_TOKEN set: create the trial on Hetzner Cloud, then deploy the sample dataset;
#   - with MUNERO_SSH_HOST set (an existing machine, see README): register it and deploy to it;
#   - with no cloud account: a rehearsal on a local VM (QEMU): install what it needs, get or build
#     the VM image, create, deploy the sample data, smoke, and print the URL, the user and where
#     the password is kept. `--teardown` (or TEARDOWN=1) ends with wipe + destroy.
# TRIAL (default demo), SSH_FROM (default auto), DATA (default: the bundled sample), MUNERO_IMAGE
# (local VM image: file, URL or built directory) adjust it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

trial=${TRIAL:-demo}
ssh_from=${SSH_FROM:-auto}
teardown=${TEARDOWN:-0}
[[ ${1:-} == --teardown ]] && teardown=1

command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup.rs)" >&2; exit 1; }
echo "[main] building munero-infra (release)" >&2
cargo build --release --locked --quiet --bin munero-infra
bin=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/munero-infra

data_args=()
[ -n "${DATA:-}" ] && data_args=(--data "$DATA")

if [ -n "${HCLOUD_TOKEN:-}" ]; then
  "$bin" create "$trial" --provider hetzner --ssh-from "$ssh_from"
  "$bin" deploy "$trial" "${data_args[@]}"
  exit 0
elif [ -n "${MUNERO_SSH_HOST:-}" ]; then
  : "${MUNERO_SSH_IDENTITY:?set MUNERO_SSH_IDENTITY to the private key that logs in to $MUNERO_SSH_HOST}"
  : "${MUNERO_SSH_HOST_KEY:?set MUNERO_SSH_HOST_KEY to the public host key file of that machine, checked out of band}"
  "$bin" create "$trial" --provider ssh --host "$MUNERO_SSH_HOST" --port "${MUNERO_SSH_PORT:-22}" \
    --user "${MUNERO_SSH_USER:-deploy}" --identity "$MUNERO_SSH_IDENTITY" --host-key "$MUNERO_SSH_HOST_KEY"
  "$bin" deploy "$trial" "${data_args[@]}"
  exit 0
fi

# --- the rehearsal on a local VM -------------------------------------------------------------------
declare -a phases=()
phase() { phases+=("$(printf '%-28s %6s s' "$1" "$2")"); }
say() { echo "[main] $*" >&2; }
say "no HCLOUD_TOKEN and no MUNERO_SSH_HOST: rehearsing trial $trial on a local VM (QEMU)"

t=$SECONDS
if [[ $(id -u) == 0 ]]; then
  bash scripts/setup/qemu.sh >&2
else
  for b in qemu-system-x86_64 qemu-img genisoimage; do
    command -v "$b" >/dev/null || { say "$b is missing: run as root, or install qemu-system-x86 qemu-utils genisoimage"; exit 1; }
  done
fi
phase "tools" $((SECONDS - t))

# The image: the Debian cloud image when it can be downloaded, else one built here.
t=$SECONDS
image=${MUNERO_IMAGE:-}
if [[ -z $image ]]; then
  if curl -fsS --max-time 10 -o /dev/null https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS 2>/dev/null; then
    image=""   # the default: downloaded once, verified, cached
  else
    say "the Debian cloud image cannot be downloaded here: building an image with debootstrap"
    image="${XDG_CACHE_HOME:-$HOME/.cache}/munero-infra/images/built"
    "$bin" image build --out "$image"
  fi
fi
phase "VM image" $((SECONDS - t))

# The stack's images: pulled by the VM when it reaches Docker Hub, else built here and shipped.
t=$SECONDS
env_args=()
ship_args=()
if ! curl -sS --max-time 10 -o /dev/null https://registry-1.docker.io/v2/ 2>/dev/null; then
  say "no container registry reachable: building registry-free images here and shipping them into the VM"
  bash scripts/setup/docker.sh >&2
  bash scripts/setup/base-images.sh >&2
  envf="${XDG_CONFIG_HOME:-$HOME/.config}/munero-infra/rehearsal.env"
  mkdir -p "$(dirname "$envf")"
  cat >"$envf" <<ENV
# Rehearsal without a registry: images built on this machine and shipped into the VM. The
# Ollama API stub stands in for Ollama: the assistant answers with its canned SQL.
OLLAMA_IMAGE=munero-test/ollama-stub:latest
CADDY_IMAGE=munero-test/caddy:${CADDY_VERSION:-2.10.2}
BACKEND_BASE_IMAGE=munero-test/python:3.13
FRONTEND_BASE_IMAGE=munero-test/node:20
ENV
  env_args=(--env "$envf")
  ship_args=(--ship-images --app-dir "$ROOT")
fi
phase "stack images" $((SECONDS - t))

t=$SECONDS
"$bin" create "$trial" --provider local ${image:+--image "$image"} --days "${DAYS:-7}"
phase "create (boot to SSH)" $((SECONDS - t))

t=$SECONDS
"$bin" deploy "$trial" "${data_args[@]}" "${env_args[@]}" "${ship_args[@]}"
phase "deploy (incl. smoke)" $((SECONDS - t))

url=$("$bin" --output json status "$trial" >/dev/null 2>&1; "$bin" --output json smoke "$trial" --dry-run | python3 -c 'import json,sys; p=json.load(sys.stdin)["plan"]; print(p[0]["url"])')
creds="${MUNERO_STATE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/munero-infra}/trials/$trial/basic-auth.toml"
user=$(sed -n 's/^user = "\(.*\)"$/\1/p' "$creds" 2>/dev/null || true)

if [[ $teardown == 1 ]]; then
  t=$SECONDS
  "$bin" wipe "$trial" --yes
  "$bin" destroy "$trial" --yes
  phase "wipe + destroy" $((SECONDS - t))
fi

echo
echo "Rehearsal of trial $trial:"
printf '  %s\n' "${phases[@]}"
if [[ $teardown != 1 ]]; then
  echo
  echo "  URL:      $url  (Caddy's own CA: the browser warns, as for any trial without a domain)"
  echo "  user:     ${user:-see $creds}"
  echo "  password: in $creds (mode 0600)"
  echo "  end it:   $bin wipe $trial --yes && $bin destroy $trial --yes"
fi
