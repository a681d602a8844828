#!/usr/bin/env bash
# Print a config for a private containerd that touches nothing of the system's: version 2 for
# containerd 1.6, version 3 for containerd 2.1 (its plugins were renamed). Used by hack/containerd/up.sh
# (the dev stack), the test harness (test/src/containerd.rs) and the benches, so all run containerd the
# same way. Inputs, from the environment:
#   CRIUS_CONTAINERD  which containerd: 1.6 (default, the system's) or 2.1 (hack/containerd/fetch-2.1.sh)
#   CTRD_DIR      the instance's own dir: root, state, sockets and opt live under it (required)
#   CTRD_CRI      1 to enable containerd's own CRI plugin (default 0: tests that need only the core APIs
#                 start faster and open no stream port)
#   CTRD_CNI_CONF_DIR, CTRD_CNI_BIN_DIR   CNI dirs for the CRI plugin
#   CTRD_CERTS_D  registry hosts dir (containerd hosts.toml format) for the CRI plugin
#   CTRD_SANDBOX_IMAGE, CTRD_DEFAULT_RUNTIME (crius | runc)
#   CTRD_SYSTEMD_CGROUP  1: the CRI plugin's runtimes get `SystemdCgroup = true` (systemd hosts)
#   CTRD_CRIUS_SHIM  path of containerd-shim-crius-v2 for 2.1's `crius` runtime (default: found on PATH)
set -euo pipefail
: "${CTRD_DIR:?CTRD_DIR must name the instance dir}"
CRIUS_CONTAINERD="${CRIUS_CONTAINERD:-1.6}"
CTRD_CRI="${CTRD_CRI:-0}"
CTRD_CNI_CONF_DIR="${CTRD_CNI_CONF_DIR:-$CTRD_DIR/cni/net.d}"
CTRD_CNI_BIN_DIR="${CTRD_CNI_BIN_DIR:-/usr/lib/cni}"
CTRD_CERTS_D="${CTRD_CERTS_D:-$CTRD_DIR/certs.d}"
CTRD_SANDBOX_IMAGE="${CTRD_SANDBOX_IMAGE:-127.0.0.1:5000/crius/pause:latest}"
CTRD_DEFAULT_RUNTIME="${CTRD_DEFAULT_RUNTIME:-crius}"
CTRD_SYSTEMD_CGROUP="${CTRD_SYSTEMD_CGROUP:-0}"
# runtime_options PLUGIN RUNTIME [BINARY]: the runtime's options table, when there is one to write
# (BINARY: the OCI runtime its shim runs instead of runc, runc's option BinaryName).
runtime_options() {
    local binary=${3:-}
    [ "$CTRD_SYSTEMD_CGROUP" = 1 ] || [ -n "$binary" ] || return 0
    printf '      [plugins."%s".containerd.runtimes.%s.options]\n' "$1" "$2"
    if [ -n "$binary" ]; then printf '        BinaryName = "%s"\n' "$binary"; fi
    if [ "$CTRD_SYSTEMD_CGROUP" = 1 ]; then printf '        SystemdCgroup = true\n'; fi
}

# Snapshotters this machine cannot use; skipping them makes the start quicker and the log quieter.
disabled='"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"'
# Without the CRI plugin this containerd serves criusd (or a test of the core APIs): these plugins
# are then never used (criusd's shims report their own exits and OOMs, it restarts nothing through
# labels, has no Sandbox API pods and no OpenTelemetry), and each costs memory and start time.
# ctr's pull in 2.x goes through the transfer service, and criusd's snapshotter is configurable, so
# transfer, streaming and the native snapshotter stay.
unused_by_criusd_16='"io.containerd.monitor.v1.cgroups", "io.containerd.internal.v1.restart", "io.containerd.grpc.v1.healthcheck"'
unused_by_criusd_21='"io.containerd.monitor.task.v1.cgroups", "io.containerd.monitor.container.v1.restart", "io.containerd.grpc.v1.healthcheck", "io.containerd.sandbox.store.v1.local", "io.containerd.grpc.v1.sandboxes", "io.containerd.sandbox.controller.v1.shim", "io.containerd.ttrpc.v1.otelttrpc", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"'
case "$CRIUS_CONTAINERD" in
1.6)
    version=2
    disabled="$disabled, \"io.containerd.snapshotter.v1.aufs\""
    [ "$CTRD_CRI" = 1 ] || disabled="$disabled, \"io.containerd.grpc.v1.cri\", $unused_by_criusd_16"
    ;;
2.1)
    version=3
    disabled="$disabled, \"io.containerd.snapshotter.v1.erofs\", \"io.containerd.differ.v1.erofs\", \"io.containerd.snapshotter.v1.blockfile\""
    [ "$CTRD_CRI" = 1 ] || disabled="$disabled, \"io.containerd.grpc.v1.cri\", \"io.containerd.cri.v1.runtime\", \"io.containerd.cri.v1.images\", \"io.containerd.podsandbox.controller.v1.podsandbox\", \"io.containerd.grpc.v1.sandbox-controllers\", $unused_by_criusd_21"
    ;;
*) echo "config.sh: CRIUS_CONTAINERD=$CRIUS_CONTAINERD: want 1.6 or 2.1" >&2; exit 2 ;;
esac

cat <<CFG
version = $version
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = [$disabled]
# Kept at 0 so the shims (children of this containerd) are not killed first under memory pressure,
# and because this machine cannot lower a score anyway (no CAP_SYS_RESOURCE).
oom_score = 0

[grpc]
  address = "$CTRD_DIR/containerd.sock"

[ttrpc]
  address = "$CTRD_DIR/containerd.sock.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"
CFG

if [ "$version" = 2 ]; then
    cat <<CFG

[plugins."io.containerd.grpc.v1.cri"]
  # These nodes lack CAP_SYS_RESOURCE: without this the pause's -998 makes runc die in its init.
  restrict_oom_score_adj = true
  sandbox_image = "$CTRD_SANDBOX_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "$CTRD_DEFAULT_RUNTIME"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crius]
      runtime_type = "io.containerd.crius.v2"
$(runtime_options io.containerd.grpc.v1.cri crius)
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
$(runtime_options io.containerd.grpc.v1.cri runc)
    # containerd's runc shim running crun (Debian's crun, hack/setup.sh).
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
$(runtime_options io.containerd.grpc.v1.cri crun crun)
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CTRD_CNI_BIN_DIR"
    conf_dir = "$CTRD_CNI_CONF_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CTRD_CERTS_D"
CFG
    exit 0
fi

CTRD_CRIUS_SHIM="${CTRD_CRIUS_SHIM:-$(command -v containerd-shim-crius-v2 || true)}"
[ "$CTRD_CRI" = 0 ] || [ -x "$CTRD_CRIUS_SHIM" ] || {
    echo "config.sh: containerd-shim-crius-v2 not found: set CTRD_CRIUS_SHIM" >&2
    exit 2
}
cat <<CFG

# NRI listens on one machine-wide socket (/var/run/nri/nri.sock): private instances stay off it.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$CTRD_SANDBOX_IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$CTRD_CERTS_D"

[plugins."io.containerd.cri.v1.runtime"]
  # These nodes lack CAP_SYS_RESOURCE: without this the pause's -998 makes runc die in its init.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "$CTRD_DEFAULT_RUNTIME"
    # containerd 2.1's CRI asks only runtimes of type io.containerd.runc.v2 for their features
    # (\`<shim> -info\`: rro mounts and more; any type from 2.4 on), so crius is that type with its
    # own shim binary as runtime_path.
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crius]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "$CTRD_CRIUS_SHIM"
$(runtime_options io.containerd.cri.v1.runtime crius)
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
$(runtime_options io.containerd.cri.v1.runtime runc)
    # No crun runtime here: containerd 2.1 writes OCI spec version 1.2, which Debian 12's crun 1.8
    # refuses ("unknown version specified"); 1.6's CRI above has one.
    # The crius shim as the pod's sandboxer (containerd's Sandbox API): no pause container, no
    # pause image. containerd's shim controller starts a sandbox's shim by runtime type (it has no
    # runtime_path), so this handler is crius's own type, found on PATH.
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crius-sandboxer]
      runtime_type = "io.containerd.crius.v2"
      sandboxer = "shim"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CTRD_CNI_BIN_DIR"]
    conf_dir = "$CTRD_CNI_CONF_DIR"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
CFG
