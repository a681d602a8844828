#!/usr/bin/env bash
# Runs inside the guest (started by the image's crius-vm-job unit from the `job` share, mounted at
# /run/crius-vm): mounts the host's shares at the host's paths, starts the local registry over the
# host's registry storage, runs the test executables named in env, writes output.log and rc there.
# The unit powers the guest off when this ends.
set -uo pipefail
job=/run/crius-vm
# shellcheck disable=SC1091
. "$job/env"    # CRIUS_REPO, CRIUS_TARGET_DIR, CRIUS_VM_TESTS (one executable + args a line)
out="$job/output.log"
exec >>"$out" 2>&1
echo "guest: $(uname -r), systemd $(systemctl --version | awk 'NR==1 {print $2}'), $(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup"

ro_mount() { # tag dir
    mkdir -p "$2" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro "$1" "$2"
}
fail() { echo "guest: $*"; echo 1 > "$job/rc"; exit 1; }
ro_mount repo "$CRIUS_REPO" || fail "mounting the repository share"
if ! [ -d "$CRIUS_TARGET_DIR/debug" ]; then ro_mount target "$CRIUS_TARGET_DIR" || fail "mounting the target share"; fi
export CARGO_TARGET_DIR="$CRIUS_TARGET_DIR" CRIUS_DEV_LIB=/var/lib/crius-dev
if grep -q registry /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
    ro_mount registry "$CRIUS_DEV_LIB/registry" || fail "mounting the registry share"
    "$CRIUS_REPO/hack/registry-up.sh" || fail "starting the registry"
fi

rc=0
while read -r exe args; do
    [ -n "$exe" ] || continue
    echo "guest: running $(basename "$exe") $args"
    # shellcheck disable=SC2086
    (cd "$CRIUS_REPO/test" && "$exe" $args) || rc=$?
done <<< "$CRIUS_VM_TESTS"
echo "$rc" > "$job/rc"
sync
