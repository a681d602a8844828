#!/usr/bin/env bash
# Start criusd for the dev stack against the dev containerd. Exit 1 (with a line saying why) when
# criusd cannot serve yet, so dev-up.sh falls back to containerd's own CRI endpoint.
#   criusd-up.sh [CERTS_D]
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
criusd="$CRIUS_TARGET_DIR/debug/criusd"
pidfile="$CRIUS_DEV_RUN/criusd.pid"
sock="$CRIUS_DEV_RUN/crius.sock"
if crius_pid_alive "$pidfile" && [ -S "$sock" ]; then
    crius_log "criusd already up (pid $(cat "$pidfile")): $sock"
    exit 0
fi
if ! [ -x "$criusd" ] || ! "$criusd" --help >/dev/null 2>&1; then
    crius_log "criusd is not built yet: serving containerd's own CRI plugin (runtime io.containerd.crius.v2)"
    exit 1
fi
crius_log "criusd start: see criusd-up.sh (wired up with criusd's config)"
exit 1
