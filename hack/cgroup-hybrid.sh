#!/usr/bin/env bash
# On a hybrid cgroup host (cgroup v1 controllers, a v2 mount at /sys/fs/cgroup/unified beside them)
# whose v2 side holds controllers, mount each of those as its own v1 hierarchy, as systemd's hybrid
# mode does. Hosts without systemd (these build machines) leave a controller no v1 hierarchy names
# (hugetlb) on v2, and crun 1.8 refuses such a host ("cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2"): the runtime handler `crun` needs this. runc and crius work either way.
# Idempotent; a pure v1 or pure v2 host, or a v2 side whose controllers are in use, is left alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
crius_need_root
root=/sys/fs/cgroup
unified=$root/unified
[ "$(stat -f -c %T "$root" 2>/dev/null)" = tmpfs ] || exit 0
[ "$(stat -f -c %T "$unified" 2>/dev/null)" = cgroup2fs ] || exit 0
controllers=$(cat "$unified/cgroup.controllers")
[ -n "$controllers" ] || exit 0
if [ -n "$(cat "$unified/cgroup.subtree_control")" ]; then
    crius_log "cgroup v2 controllers in use under $unified: left there (crun will refuse this host)"
    exit 0
fi
for c in $controllers; do
    mkdir -p "$root/$c"
    mountpoint -q "$root/$c" || mount -t cgroup -o "$c" cgroup "$root/$c"
done
crius_log "hybrid cgroups: mounted $controllers as cgroup v1 (its v2 side now holds none, as under systemd)"
