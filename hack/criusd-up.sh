#!/usr/bin/env bash
# Start criusd for the dev stack, against the dev containerd, with a dev config that allows the
# plain-http local registry. Exit 1 (with a line saying why) when criusd cannot serve, so dev-up.sh
# can say so. Idempotent.
#   criusd-up.sh [CERTS_D]
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
crius_need_root

criusd="$CRIUS_TARGET_DIR/debug/criusd"
pause="$CRIUS_TARGET_DIR/release/crius-pause"
certs_d="${1:-$CRIUS_DEV_LIB/certs.d}"
pidfile="$CRIUS_DEV_RUN/criusd.pid"
sock="$CRIUS_DEV_RUN/crius.sock"
config="$CRIUS_DEV_RUN/criusd.toml"
if crius_pid_alive "$pidfile" && [ -S "$sock" ]; then
    crius_log "criusd already up (pid $(cat "$pidfile")): $sock"
    exit 0
fi
[ -x "$criusd" ] || { crius_log "no $criusd: run hack/build.sh"; exit 1; }
[ -x "$pause" ] || { crius_log "no $pause: run hack/build.sh"; exit 1; }

mkdir -p "$CRIUS_DEV_RUN" "$CRIUS_DEV_LIB/crius"
cat > "$config" <<CFG
# criusd dev config, written by hack/criusd-up.sh
listen = "$sock"
containerd_address = "$CRIUS_DEV_RUN/containerd/containerd.sock"
containerd_root = "$CRIUS_DEV_LIB/containerd"
containerd_namespace = "crius"
state_dir = "$CRIUS_DEV_LIB/crius"
run_dir = "$CRIUS_DEV_RUN/crius"
cni_conf_dir = "$CRIUS_DEV_LIB/cni/net.d"
cni_bin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
registry_config_dir = "$certs_d"
log_level = "info"

[pause]
binary = "$pause"
CFG
rm -f "$sock"
# The shim containerd starts finds crius's binaries (and the log driver) next to criusd.
PATH="$CRIUS_TARGET_DIR/debug:$PATH" setsid "$criusd" --config "$config" \
    </dev/null >"$CRIUS_DEV_RUN/criusd.log" 2>&1 &
echo $! > "$pidfile"
if ! crius_wait_socket "$sock" 30; then
    crius_log "criusd did not start; last log lines:"
    tail -n 20 "$CRIUS_DEV_RUN/criusd.log" >&2 || true
    crius_stop_pidfile "$pidfile" criusd
    exit 1
fi
crius_log "criusd up (pid $(cat "$pidfile")): $sock, log $CRIUS_DEV_RUN/criusd.log"
