#!/usr/bin/env bash
# Boot the guest image (hack/vm/image.sh) headless and run one job in it:
#   hack/vm/run.sh JOB_DIR TIMEOUT_SECS
# JOB_DIR holds guest.sh (run by the guest's crius-vm-job unit as root) and env (sourced by it); the
# guest writes its output and exit code there. Read-only 9p shares bring in the repository (the test
# binaries, hack/ scripts and host-built binaries, at the same paths as on the host) and the local
# registry's storage. The guest has no network but loopback. The serial console goes to
# JOB_DIR/console.log. qemu is killed at TIMEOUT_SECS. Exit status: qemu's (124 on timeout).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
crius_need_root
job=$(cd "${1:?usage: run.sh JOB_DIR TIMEOUT_SECS}" && pwd)
timeout_secs=${2:?usage: run.sh JOB_DIR TIMEOUT_SECS}

command -v qemu-system-x86_64 >/dev/null || {
    crius_log "installing qemu-system-x86 (for the guest)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }
}
image=$("$here/image.sh")

# KVM guests hang after the firmware on these (nested) machines: TCG unless asked for.
accel=(-accel tcg,thread=multi -cpu max)
[ "${CRIUS_VM_ACCEL:-tcg}" = kvm ] && accel=(-accel kvm -cpu host)

share() { # tag host_dir [readonly]
    local ro=""; [ "${3:-}" = ro ] && ro=",readonly=on"
    echo "-virtfs local,path=$2,mount_tag=$1,security_model=passthrough,id=$1$ro"
}
shares=$(share job "$job")
shares+=" $(share repo "$CRIUS_REPO" ro)"
case "$CRIUS_TARGET_DIR/" in
"$CRIUS_REPO"/*) ;;
*) shares+=" $(share target "$CRIUS_TARGET_DIR" ro)" ;;
esac
[ -d "$CRIUS_DEV_LIB/registry" ] && shares+=" $(share registry "$CRIUS_DEV_LIB/registry" ro)"

# Snapshot mode: the cached disk stays as built, the run's writes go to a temp file.
# shellcheck disable=SC2086
exec timeout -s KILL "$timeout_secs" qemu-system-x86_64 "${accel[@]}" \
    -m "${CRIUS_VM_MEM_MB:-2048}" -smp "${CRIUS_VM_CPUS:-2}" \
    -nodefaults -no-reboot -display none -monitor none -nic none \
    -serial "file:$job/console.log" \
    -device virtio-rng-pci \
    -drive "file=$image/disk.img,format=raw,if=virtio,snapshot=on" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 ${CRIUS_VM_APPEND:-quiet} crius.job=1 systemd.unified_cgroup_hierarchy=1" \
    $shares
