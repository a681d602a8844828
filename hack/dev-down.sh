#!/usr/bin/env bash
# Stop everything hack/dev-up.sh started and remove what it made under /run/crius-dev.
# Images in the registry and containerd's content stay for the next dev-up; `--purge` removes those too,
# and everything else under $CRIUS_DEV_LIB (the fresh-check root, the guest image, the apt caches).
# Idempotent: safe when nothing runs.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
crius_need_root
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
