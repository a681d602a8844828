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
