#!/usr/bin/env bash
# Stop everything hack/dev-up.sh started and remove what it made under /run/crius-dev.
# Images in the registry and containerd's content stay for the next dev-up; `--purge` removes those too,
# and everything else under $CRIUS_DEV_LIB (the fresh-check root, the guest image, the apt caches).
# Idempotent: safe when nothing runs.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
crius_need_root
# Pods first, through criusd and through the dev containerd's own CRI: their netns and /dev/shm
# mounts, IPs and processes go with them (stopping criusd and containerd under running pods would
# leave those behind).
ctl="$CRIUS_TARGET_DIR/debug/criusctl"
# remove_pods PIDFILE SOCKET: every pod of the CRI server on SOCKET, if it runs.
remove_pods() {
    crius_pid_alive "$1" && [ -x "$ctl" ] || return 0
    local pod
    for pod in $("$ctl" -r "unix://$2" pods -q 2>/dev/null); do
        { "$ctl" -r "unix://$2" stopp "$pod" && "$ctl" -r "unix://$2" rmp "$pod"; } >/dev/null ||
            crius_log "pod $pod ($2): not removed"
    done
}
remove_pods "$CRIUS_DEV_RUN/criusd.pid" "$CRIUS_DEV_RUN/crius.sock"
remove_pods "$CRIUS_DEV_RUN/containerd/containerd.pid" "$CRIUS_DEV_RUN/containerd/containerd.sock"
"$here/criusd-down.sh"
"$here/containerd/down.sh" "$@"
"$here/registry-down.sh" "$@"
# The dev network's bridge (made by the CNI bridge plugin on the first pod; CNI never removes it).
if [ -e /sys/class/net/crius0 ] && [ -z "$(ls /sys/class/net/crius0/brif 2>/dev/null)" ]; then
    ip link del crius0 2>/dev/null || true
fi
rm -rf "$CRIUS_DEV_RUN"
if [ "${1:-}" = "--purge" ]; then rm -rf "$CRIUS_DEV_LIB"; fi
crius_log "dev stack down"
