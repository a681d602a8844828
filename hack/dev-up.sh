#!/usr/bin/env bash
# Bring up crius's whole dev stack in one step, idempotently:
#   1. the local registry on 127.0.0.1:5000 with the local images (hack/images/build.sh),
#   2. the private dev containerd (hack/containerd/up.sh; its own CRI plugin runs with crius's shim
#      as the default runtime),
#   3. criusd against that containerd, with a dev config that allows the plain-http local registry.
# Prints one line at the end:  CRI endpoint: unix:///…   (point crictl or kubelet at it).
#
# Environment:
#   CRIUS_DEV_CERTS_D=<dir>   registry hosts dir (containerd hosts.toml format) to use instead of the
#                             dev one (which makes 127.0.0.1:5000 plain http)
#   CRIUS_DEV_NO_BUILD=1      do not run cargo (binaries already built)
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
crius_need_root

[ "${CRIUS_DEV_NO_BUILD:-0}" = 1 ] || "$here/build.sh"
"$here/registry-up.sh"
"$here/images/build.sh"
certs_d="${CRIUS_DEV_CERTS_D:-$CRIUS_DEV_LIB/certs.d}"
"$here/containerd/certs.sh" "$CRIUS_DEV_LIB/certs.d" "$CRIUS_REGISTRY"
"$here/containerd/up.sh"

"$here/criusd-up.sh" "$certs_d" || crius_die "criusd did not come up (log: $CRIUS_DEV_RUN/criusd.log)"
echo "CRI endpoint: unix://$CRIUS_DEV_RUN/crius.sock"
