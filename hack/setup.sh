#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for crius: packages, then a build of the workspace.
# Idempotent and safe to re-run. It installs packages only: it never configures, starts, stops or
# restarts a system containerd or registry (Debian's packages ship no running service without systemd,
# and crius's dev stack runs its own private copies, see hack/dev-up.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
crius_need_root

# protoc: containerd-client's build script (tonic-build) runs the `protoc` on PATH and has no vendored
# one, so the machine needs Debian's (3.21 compiles containerd's protos). crius's own CRI proto needs a
# newer protoc (`debug_redact`), which proto/ brings itself through protoc-bin-vendored.
PACKAGES=(
    containerd runc containernetworking-plugins   # the runtime stack crius drives
    crun                                          # a second OCI runtime: the runtime handler crun
    busybox                                       # applets for scripts; images use its .deb
    umoci skopeo docker-registry                  # build OCI images, push them, serve them on 127.0.0.1:5000
    iproute2 iptables curl jq procps psmisc       # used by scripts and the tests' leak checks
    ca-certificates git build-essential pkg-config
    protobuf-compiler                             # protoc for containerd-client's build script (see below)
    python3 python3-venv                          # the grpcio client test's venv (hack/grpcio-venv.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
    # A containerd or runc the machine already has (Docker's containerd.io, a hand-installed one) is
    # used as it is: replacing the package under a running containerd would break it.
    if { [ "$p" = containerd ] || [ "$p" = runc ]; } && command -v "$p" >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    crius_log "installing: ${missing[*]}"
    # Debian's docker-registry ships an init script that would listen on :5000 when invoked: keep
    # package scripts from starting services (policy-rc.d 101), restore afterwards.
    policy=/usr/sbin/policy-rc.d
    had_policy=0; [ -e "$policy" ] && had_policy=1
    [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; }
    trap '[ "$had_policy" = 1 ] || rm -f "$policy"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    crius_log "packages present"
fi

# Rust: the machine's toolchain (rustup). crius needs edition 2021 and rust >= 1.85.
command -v cargo >/dev/null || crius_die "cargo not found: install a Rust toolchain >= 1.85 (rustup) first"
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
[ "$rustc_minor" -ge 85 ] || crius_die "rustc $(rustc --version) is too old: crius needs >= 1.85"
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true

# CNI plugins: Debian installs them in /usr/lib/cni; many tools (and operators) look in /opt/cni/bin.
# Link the ones not already there, never overwriting an operator's own.
mkdir -p /opt/cni/bin
for plugin in /usr/lib/cni/*; do
    [ -e "/opt/cni/bin/$(basename "$plugin")" ] || ln -s "$plugin" "/opt/cni/bin/$(basename "$plugin")"
done

"$CRIUS_REPO/hack/cgroup-hybrid.sh"   # a hybrid host's v2-only controllers on v1, so crun runs here too
"$CRIUS_REPO/hack/containerd/fetch-2.1.sh"   # containerd 2.1 beside the system's, for the 2.x tests
"$CRIUS_REPO/hack/grpcio-venv.sh" >/dev/null  # grpcio from PyPI + CRI stubs, for criusd_grpc_authority
# The .deb files the local images are built from: fetched now, so the demo and the tests need no network.
"$CRIUS_REPO/hack/images/build.sh" --fetch

crius_log "building crius"
"$CRIUS_REPO/hack/build.sh"
crius_log "setup done"
