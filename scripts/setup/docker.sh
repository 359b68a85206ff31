#!/usr/bin/env bash
# Install and start a Docker engine with Compose v2 and buildx, without systemd.
#
# Idempotent: does nothing when `docker info`, `docker compose` and `docker buildx` already work.
# The engine is Debian trixie's docker.io (26.x, BuildKit built in), installed with its
# dependencies from the host's own suite; the Compose v2 and buildx CLI plugins are taken from
# trixie's packages and unpacked into /usr/local/lib/docker/cli-plugins. Trixie is reached through
# a private apt source list, so /etc/apt is never changed. Set MUNERO_DOCKER_ENGINE=host-suite to
# install the host suite's docker.io instead (older engine, e.g. Debian 12's 20.10).
set -euo pipefail

log() { printf '[docker.sh] %s\n' "$*" >&2; }

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
TRIXIE_DIR=/var/cache/munero-apt-trixie
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}

trixie_apt() {
    # apt against a private trixie source list; never touches /etc/apt or the host's lists.
    local cmd=$1; shift
    "$cmd" -o Dir::Etc::sourcelist="$TRIXIE_DIR/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::lists="$TRIXIE_DIR/lists" -o Dir::Cache="$TRIXIE_DIR/cache" \
        -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root "$@"
}

trixie_update() {
    if [[ -f $TRIXIE_DIR/.updated ]] && [[ -n $(find "$TRIXIE_DIR/.updated" -mmin -720 2>/dev/null) ]]; then
        return 0
    fi
    mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/debs"
    echo "deb http://deb.debian.org/debian trixie main" >"$TRIXIE_DIR/sources.list"
    log "updating the private trixie package list"
    trixie_apt apt-get -qq update
    touch "$TRIXIE_DIR/.updated"
}

trixie_download() {
    # Prints the path of the downloaded .deb for package $1.
    local pkg=$1 deb
    trixie_update
    (cd "$TRIXIE_DIR/debs" && trixie_apt apt-get -qq download "$pkg" >/dev/null)
    deb=$(find "$TRIXIE_DIR/debs" -maxdepth 1 -name "${pkg}_*.deb" -printf "%T@ %p\n" | sort -rn | head -n1 | cut -d" " -f2-)
    printf '%s\n' "$deb"
}

host_apt_updated=0
host_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $host_apt_updated == 0 ]]; then
        apt-get -qq update
        host_apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_engine() {
    if command -v dockerd >/dev/null 2>&1; then
        return 0
    fi
    if [[ ${MUNERO_DOCKER_ENGINE:-trixie} == host-suite ]]; then
        log "installing docker.io from the host's suite"
        host_apt_install docker.io iptables
        return 0
    fi
    log "installing the docker engine (trixie docker.io) and its dependencies"
    local deb
    deb=$(trixie_download docker.io)
    # apt resolves docker.io's dependencies (containerd, runc, tini, iptables) from the host suite.
    host_apt_install "$deb"
}

install_plugin() {
    local pkg=$1 plugin=$2 deb tmp
    if [[ -x $PLUGIN_DIR/$plugin ]]; then
        return 0
    fi
    log "installing the $plugin CLI plugin from trixie's $pkg"
    deb=$(trixie_download "$pkg")
    tmp=$(mktemp -d)
    dpkg -x "$deb" "$tmp"
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$tmp/usr/libexec/docker/cli-plugins/$plugin" "$PLUGIN_DIR/$plugin"
    rm -rf "$tmp"
}

start_engine() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    log "starting dockerd (log: $DOCKERD_LOG)"
    setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local i
    for i in $(seq 1 60); do
        if docker info >/dev/null 2>&1; then
            log "dockerd is up after ${i}s"
            return 0
        fi
        sleep 1
    done
    log "dockerd did not come up within 60 s; last lines of $DOCKERD_LOG:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    return 1
}

main() {
    if [[ $(id -u) != 0 ]]; then
        log "must run as root"
        exit 1
    fi
    if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
        install_engine
    fi
    install_plugin docker-compose docker-compose
    install_plugin docker-buildx docker-buildx
    start_engine
    docker compose version >/dev/null
    docker buildx version >/dev/null
    log "ready: engine $(docker version --format '{{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /'), $(docker buildx version | awk '{print "buildx " $2}')"
}

main "$@"
