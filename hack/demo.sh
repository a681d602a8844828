#!/usr/bin/env bash
# The README's demo: set up a fresh Debian 12 machine, bring the dev stack up, run a container whose
# output is shown, then clean everything up. As root, from anywhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
crius_need_root

"$here/setup.sh"
trap '"$here/dev-down.sh" >/dev/null 2>&1 || true' EXIT
CRIUS_DEV_NO_BUILD=1 "$here/dev-up.sh"

sock="$CRIUS_DEV_RUN/containerd/containerd.sock"
image="$CRIUS_REGISTRY/crius/busybox:latest"
ctr=(ctr -a "$sock" -n crius-demo)
crius_log "pulling $image from the local registry"
"${ctr[@]}" images pull --plain-http --hosts-dir "$CRIUS_DEV_LIB/certs.d" "$image" >/dev/null
crius_log "running a container with the crius shim (io.containerd.crius.v2)"
echo "----- container output -----"
"${ctr[@]}" run --rm --runtime io.containerd.crius.v2 "$image" crius-demo \
    sh -c 'echo "hello from crius: $(uname -sr), pid $$, as $(id -un)"; ls /bin | head -3'
echo "----------------------------"
crius_log "demo done; cleaning up"
