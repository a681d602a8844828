#!/usr/bin/env bash
# Build (or find cached) the guest image for hack/vm/: a Debian 12 root with systemd as PID 1 on
# cgroup v2, made from Debian's packages only (debootstrap minbase + hack/vm/packages), configured to
# run one job and power off, put into an ext4 disk image with `mkfs.ext4 -d`. Prints the image dir,
# which holds disk.img, vmlinuz and initrd.img.
#
# Two caches under $CRIUS_DEV_LIB/vm: root-<stamp> (the debootstrapped tree; its stamp hashes the
# package list and the debootstrap step) and image-<stamp> (the configured disk; its stamp adds this
# script). Editing the package list rebuilds both (~4 min), editing the configuration only the disk
# (~20 s). Older ones are removed. Concurrent callers wait on one lock. The build reaches Debian's
# mirror ($CRIUS_VM_MIRROR); the guest itself never has a network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
crius_need_root

mirror="${CRIUS_VM_MIRROR:-http://deb.debian.org/debian}"
vm_lib="$CRIUS_DEV_LIB/vm"

# debootstrap_root DIR PACKAGES: Debian 12 minbase plus PACKAGES (comma-separated) into DIR.
# Two stages, so that no package script starts a service while the packages are configured: the
# chroot shares this machine's network, and docker-registry's init script would listen on :5000.
debootstrap_root() {
    local dir=$1 packages=$2 log=$1.log
    debootstrap --foreign --variant=minbase --include="$packages" bookworm "$dir" "$mirror" >"$log" 2>&1 \
        || { tail -20 "$log" >&2; return 1; }
    printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
    chmod +x "$dir/usr/sbin/policy-rc.d"
    chroot "$dir" /debootstrap/debootstrap --second-stage >>"$log" 2>&1 || { tail -20 "$log" >&2; return 1; }
    for m in proc sys dev/pts dev; do mountpoint -q "$dir/$m" && umount -l "$dir/$m"; done
    rm -f "$dir/usr/sbin/policy-rc.d"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir/debootstrap"
}

packages=$(grep -v '^\s*#' "$here/packages" | awk 'NF {print $1}' | paste -sd, -)
root_stamp=$( { echo "$packages"; declare -f debootstrap_root; } | sha256sum | cut -c1-16)
image_stamp=$( { echo "$root_stamp"; cat "$here/image.sh"; } | sha256sum | cut -c1-16)
root="$vm_lib/root-$root_stamp"
image="$vm_lib/image-$image_stamp"

mkdir -p "$vm_lib"
exec 9>"$vm_lib/lock"
flock 9
if [ -s "$image/disk.img" ] && [ -s "$image/vmlinuz" ] && [ -s "$image/initrd.img" ]; then
    echo "$image"
    exit 0
fi

if ! command -v debootstrap >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
    crius_log "installing debootstrap (for the guest image)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends debootstrap e2fsprogs >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap e2fsprogs >/dev/null; }
fi

build="$vm_lib/build.$$"
cleanup() {
    for m in proc sys dev/pts dev; do
        mountpoint -q "$build/root/$m" 2>/dev/null && umount -l "$build/root/$m"
        mountpoint -q "$build/tree/$m" 2>/dev/null && umount -l "$build/tree/$m"
    done
    rm -rf "$build"
}
trap cleanup EXIT
mkdir -p "$build"
start=$(date +%s)

if ! [ -f "$root/.complete" ]; then
    crius_log "debootstrap of the guest's root (bookworm from $mirror; a few minutes)"
    debootstrap_root "$build/root" "$packages" || crius_die "debootstrap failed (log above)"
    touch "$build/root/.complete"
    rm -rf "$vm_lib"/root-*
    mv "$build/root" "$root"
fi

crius_log "configuring the guest image"
tree="$build/tree"
cp -a "$root" "$tree"
rm -f "$tree/.complete"
echo crius-vm > "$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 crius-vm\n::1 localhost\n' > "$tree/etc/hosts"
cat > "$tree/etc/fstab" <<'FSTAB'
/dev/vda  /     ext4   rw,noatime  0 1
tmpfs     /tmp  tmpfs  rw,nosuid,nodev,size=1536m  0 0
FSTAB
chroot "$tree" passwd -d root >/dev/null            # console login for debugging
printf '9p\n9pnet_virtio\noverlay\nbr_netfilter\nveth\nbridge\n' > "$tree/etc/modules-load.d/crius.conf"
# Every second of boot counts under TCG: nothing runs that the job does not need. The tests start
# their own containerd and registry, so the packages' services stay off too.
for unit in containerd.service docker-registry.service e2scrub_reap.service e2scrub_all.timer \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer \
    systemd-tmpfiles-clean.timer getty@tty1.service systemd-logind.service \
    systemd-timesyncd.service man-db.timer; do
    ln -sf /dev/null "$tree/etc/systemd/system/$unit"
done
# CNI plugins where kubelet-era tools look for them, as hack/setup.sh does on the host.
mkdir -p "$tree/opt/cni/bin"
for plugin in "$tree"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/$(basename "$plugin")" "$tree/opt/cni/bin/"; done

# The job: mount the share named `job`, run its guest.sh, power off whatever happens.
cat > "$tree/usr/local/sbin/crius-vm-job" <<'JOB'
#!/bin/sh
mkdir -p /run/crius-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /run/crius-vm || exit 1
[ -f /run/crius-vm/guest.sh ] || exit 1
exec bash /run/crius-vm/guest.sh
JOB
chmod +x "$tree/usr/local/sbin/crius-vm-job"
cat > "$tree/etc/systemd/system/crius-vm-job.service" <<'UNIT'
[Unit]
Description=crius guest job (hack/vm): run the job share's guest.sh, then power off
After=basic.target dbus.service
Wants=dbus.service
ConditionKernelCommandLine=crius.job=1
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/crius-vm-job
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/crius-vm-job.service "$tree/etc/systemd/system/multi-user.target.wants/"

cp "$tree"/boot/vmlinuz-* "$build/vmlinuz"
cp "$tree"/boot/initrd.img-* "$build/initrd.img"
mkfs.ext4 -q -L crius-vm -d "$tree" "$build/disk.img" 3G >/dev/null
rm -rf "$tree"

rm -rf "$vm_lib"/image-*
mv "$build" "$image"
trap - EXIT
crius_log "guest image ready in $(( $(date +%s) - start )) s: $image"
echo "$image"
