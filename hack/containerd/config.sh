#!/usr/bin/env bash
# Print a containerd 1.6 config (version 2) for a private containerd that touches nothing of the system's.
# Used by hack/containerd/up.sh (the dev stack) and by the test harness (test/src/containerd.rs), so both
# run containerd the same way. Inputs, from the environment:
#   CTRD_DIR      the instance's own dir: root, state, sockets and opt live under it (required)
#   CTRD_CRI      1 to enable containerd's own CRI plugin (default 0: tests that need only the core APIs
#                 start faster and open no stream port)
#   CTRD_CNI_CONF_DIR, CTRD_CNI_BIN_DIR   CNI dirs for the CRI plugin
#   CTRD_CERTS_D  registry hosts dir (containerd hosts.toml format) for the CRI plugin
#   CTRD_SANDBOX_IMAGE, CTRD_DEFAULT_RUNTIME (crius | runc)
set -euo pipefail
: "${CTRD_DIR:?CTRD_DIR must name the instance dir}"
CTRD_CRI="${CTRD_CRI:-0}"
CTRD_CNI_CONF_DIR="${CTRD_CNI_CONF_DIR:-$CTRD_DIR/cni/net.d}"
CTRD_CNI_BIN_DIR="${CTRD_CNI_BIN_DIR:-/usr/lib/cni}"
CTRD_CERTS_D="${CTRD_CERTS_D:-$CTRD_DIR/certs.d}"
CTRD_SANDBOX_IMAGE="${CTRD_SANDBOX_IMAGE:-127.0.0.1:5000/crius/pause:latest}"
CTRD_DEFAULT_RUNTIME="${CTRD_DEFAULT_RUNTIME:-crius}"

disabled='"io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"'
[ "$CTRD_CRI" = 1 ] && disabled='"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"'

cat <<CFG
version = 2
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
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CTRD_CNI_BIN_DIR"
    conf_dir = "$CTRD_CNI_CONF_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CTRD_CERTS_D"
CFG
