# shellcheck shell=bash
# Shared paths and helpers for crius's hack/ scripts. Source it; it sets no shell options.
#
# Everything crius's dev stack makes lives under two crius-owned roots, so nothing here ever touches
# /etc/containerd, /var/lib/containerd or a containerd the machine already runs.

CRIUS_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRIUS_DEV_RUN="${CRIUS_DEV_RUN:-/run/crius-dev}"        # sockets, pid files, logs (gone at reboot)
CRIUS_DEV_LIB="${CRIUS_DEV_LIB:-/var/lib/crius-dev}"    # registry storage, images, containerd root
CRIUS_REGISTRY="${CRIUS_REGISTRY:-127.0.0.1:5000}"
CRIUS_TARGET_DIR="${CARGO_TARGET_DIR:-$CRIUS_REPO/target}"
CRIUS_CONTAINERD21="${CRIUS_CONTAINERD21:-/opt/crius/containerd-2.1}"   # containerd 2.1 (hack/containerd/fetch-2.1.sh)

crius_log() { printf '[crius %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
crius_die() { crius_log "error: $*"; exit 1; }

crius_need_root() {
    [ "$(id -u)" = 0 ] || crius_die "$(basename "$0") must run as root (it installs packages and mounts)"
}

# crius_pid_alive PIDFILE: true when the pid file names a live process.
crius_pid_alive() {
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# crius_stop_pidfile PIDFILE NAME: SIGTERM, wait up to 10 s, then SIGKILL; removes the pid file.
crius_stop_pidfile() {
    local pidfile=$1 name=$2 pid i
    if crius_pid_alive "$pidfile"; then
        pid=$(cat "$pidfile")
        crius_log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# crius_wait_http URL SECONDS: wait until URL answers.
crius_wait_http() {
    local url=$1 secs=$2 i
    for i in $(seq 1 $((secs * 10))); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# crius_wait_socket PATH SECONDS: wait until a unix socket exists.
crius_wait_socket() {
    local path=$1 secs=$2 i
    for i in $(seq 1 $((secs * 10))); do
        [ -S "$path" ] && return 0
        sleep 0.1
    done
    return 1
}

# crius_containerd_path: $PATH with the bin dir of the containerd CRIUS_CONTAINERD picks first:
# 1.6 (the default) is the system's; 2.1 is $CRIUS_CONTAINERD21/bin, fetched when missing. Use it as
# `PATH=$(crius_containerd_path)`; hack/containerd/config.sh reads CRIUS_CONTAINERD too.
crius_containerd_path() {
    case "${CRIUS_CONTAINERD:-1.6}" in
    1.6) printf '%s\n' "$PATH" ;;
    2.1)
        [ -x "$CRIUS_CONTAINERD21/bin/containerd" ] || "$CRIUS_REPO/hack/containerd/fetch-2.1.sh" >&2 || return 1
        printf '%s\n' "$CRIUS_CONTAINERD21/bin:$PATH"
        ;;
    *) crius_log "error: CRIUS_CONTAINERD=$CRIUS_CONTAINERD: want 1.6 or 2.1"; return 1 ;;
    esac
}

# crius_debootstrap DIR [PACKAGE,...]: a minimal Debian 12 root (debootstrap --variant=minbase bookworm,
# from the machine's own Debian mirror) at DIR, with the extra packages given, built once and cached:
# DIR/.crius-key records what it was made from (suite, mirror, packages, extra KEY text in
# $CRIUS_ROOT_KEY), and a root whose key differs is built again. debootstrap itself comes from Debian's
# packages when the machine lacks it. Used by hack/fresh-check.sh and the systemd guest (hack/vm/).
crius_debootstrap() {
    local dir=$1 include=${2:-} mirror key
    mirror=$(crius_debian_mirror)
    key="bookworm minbase $mirror include=$include ${CRIUS_ROOT_KEY:-}"
    if [ -f "$dir/.crius-key" ] && [ "$(cat "$dir/.crius-key")" = "$key" ]; then
        crius_log "debian root $dir up to date"
        return 0
    fi
    command -v debootstrap >/dev/null || {
        crius_log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; } \
            || crius_die "could not install debootstrap"
    }
    rm -rf "$dir.new"
    mkdir -p "$(dirname "$dir")"
    crius_log "debootstrap bookworm (minbase${include:+, +$include}) into $dir (a few minutes)"
    debootstrap --variant=minbase ${include:+--include="$include"} bookworm "$dir.new" "$mirror" \
        > "$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; crius_die "debootstrap failed (log: $dir.log)"; }
    printf '%s' "$key" > "$dir.new/.crius-key"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
}

# The Debian mirror this machine installs from (its apt sources), for roots made from the same packages.
crius_debian_mirror() {
    local m
    m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
    [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
    printf '%s' "${m:-http://deb.debian.org/debian}"
}
