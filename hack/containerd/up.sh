#!/usr/bin/env bash
# Start the dev stack's private containerd: config, root, state and socket under crius-owned dirs,
# the crius shim on its PATH, CNI conflist and registry hosts of its own. Idempotent.
#   socket: $CRIUS_DEV_RUN/containerd/containerd.sock
#   CRIUS_CONTAINERD=1.6|2.1 picks the containerd (default 1.6, the system's; see lib.sh)
set -euo pipefail
here=$(dirname "$0")
. "$here/../lib.sh"
crius_need_root

dir="$CRIUS_DEV_RUN/containerd"
pidfile="$dir/containerd.pid"
sock="$dir/containerd.sock"
if crius_pid_alive "$pidfile" && [ -S "$sock" ]; then
    crius_log "dev containerd $(cat "$dir/version" 2>/dev/null) already up (pid $(cat "$pidfile")): $sock"
    exit 0
fi
PATH=$(crius_containerd_path)
command -v containerd >/dev/null || crius_die "containerd missing: run hack/setup.sh"

mkdir -p "$dir" "$CRIUS_DEV_LIB/containerd"
"$here/cni.sh" "$CRIUS_DEV_LIB/cni/net.d" crius-dev crius0 10.88.0.0/16 "$CRIUS_DEV_LIB/cni/networks"
"$here/certs.sh" "$CRIUS_DEV_LIB/certs.d" "$CRIUS_REGISTRY"
# root under /var/lib so images survive a reboot; everything else under /run.
ln -sfn "$CRIUS_DEV_LIB/containerd" "$dir/root" 2>/dev/null || true
CTRD_DIR="$dir" CTRD_CRI=1 CTRD_CRIUS_SHIM="$CRIUS_TARGET_DIR/debug/containerd-shim-crius-v2" \
    CTRD_CNI_CONF_DIR="$CRIUS_DEV_LIB/cni/net.d" CTRD_CERTS_D="$CRIUS_DEV_LIB/certs.d" \
    "$here/config.sh" > "$dir/config.toml"

# The shim containerd starts for io.containerd.crius.v2 is found on PATH.
PATH="$CRIUS_TARGET_DIR/debug:$PATH" setsid containerd --config "$dir/config.toml" \
    </dev/null >"$dir/containerd.log" 2>&1 &
echo $! > "$pidfile"
echo "${CRIUS_CONTAINERD:-1.6}" > "$dir/version"   # down.sh's ctr matches it
crius_wait_socket "$sock" 30 || crius_die "containerd did not start; log: $dir/containerd.log"
crius_log "dev containerd ${CRIUS_CONTAINERD:-1.6} up (pid $(cat "$pidfile")): $sock"
