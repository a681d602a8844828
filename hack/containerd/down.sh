#!/usr/bin/env bash
# Stop the dev containerd and everything it runs: tasks are killed and deleted (so shims exit), then
# containerd stops, then leftover mounts under its dirs are unmounted. `--purge` also removes its
# root (images, snapshots). Idempotent.
set -euo pipefail
here=$(dirname "$0")
. "$here/../lib.sh"

dir="$CRIUS_DEV_RUN/containerd"
sock="$dir/containerd.sock"
[ "$(cat "$dir/version" 2>/dev/null)" = 2.1 ] && PATH="$CRIUS_CONTAINERD21/bin:$PATH"
if crius_pid_alive "$dir/containerd.pid" && [ -S "$sock" ]; then
    for ns in $(ctr -a "$sock" namespaces ls -q 2>/dev/null); do
        for task in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
        done
        sleep 0.2
        for task in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" tasks delete -f "$task" >/dev/null 2>&1 || true
        done
        for c in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" containers delete "$c" >/dev/null 2>&1 || true
        done
    done
fi
crius_stop_pidfile "$dir/containerd.pid" "dev containerd"
# Shims whose containerd is gone: they carry the socket address on their command line.
for pid in $(pgrep -f -- "-address $sock" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
for root in "$dir" "$CRIUS_DEV_LIB/containerd"; do
    real=$(readlink -f "$root" 2>/dev/null || echo "$root")
    awk -v r="$real/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
done
rm -rf "$dir"
if [ "${1:-}" = "--purge" ]; then rm -rf "$CRIUS_DEV_LIB/containerd" "$CRIUS_DEV_LIB/cni" "$CRIUS_DEV_LIB/certs.d"; fi
crius_log "dev containerd down"
