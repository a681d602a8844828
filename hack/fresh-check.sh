#!/usr/bin/env bash
# The fresh-machine check: do the README's two promises hold on a Debian 12 machine that has a Rust
# toolchain and nothing else? A minimal Debian 12 root (debootstrap --variant=minbase bookworm, cached
# under $CRIUS_DEV_LIB/fresh) is copied afresh for each run; this repository's files and, read-only, the
# host's Rust toolchain are brought in; inside a chroot, with /proc, /sys and /dev, it runs
#   1. hack/setup.sh            packages, image .debs and the build (its own target dir), with the network
#   2. hack/demo.sh             pod + logs + exec through criusd, in a private network namespace with only
#                               loopback (nothing left to download, and no clash with the host's ports,
#                               bridges or dev stack)
# and fails, naming the step and what was missing, when a step a fresh machine needs is not there.
# Everything runs in private mount and PID namespaces: when the check ends, its mounts and processes end
# with it. hack/test.sh (so CI) calls it; `hack/dev-down.sh --purge` removes the cached root.
#
#   hack/fresh-check.sh [--keep]     --keep leaves the run's root in $CRIUS_DEV_LIB/fresh/run to look at
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
crius_need_root
keep=0; [ "${1:-}" = --keep ] && keep=1

fresh="$CRIUS_DEV_LIB/fresh"
base="$fresh/root"   # pristine minbase root, cached
run="$fresh/run"     # this run's copy
mkdir -p "$fresh"
exec 9>"$fresh/lock"
flock -n 9 || crius_die "another fresh-check runs (lock $fresh/lock)"

# The toolchain a fresh machine has: rustup's home and cargo's bin dir, whatever their paths.
cargo_bin=$(dirname "$(command -v cargo)") || crius_die "cargo not found: the check brings in the host's Rust toolchain"
rustup_home=$(rustup show home 2>/dev/null || true)

# Rebuilt when setup.sh's package list changes, so a package dropped from it is noticed at once.
packages_key=$(sed -n '/^PACKAGES=(/,/^)/p' "$here/setup.sh" | sha256sum | cut -c1-16)
CRIUS_ROOT_KEY="setup-packages=$packages_key" crius_debootstrap "$base"

started=$(date +%s)
crius_log "fresh-check: copying the root and the repository"
rm -rf "$run"
cp -a "$base" "$run"
mkdir -p "$run/src/crius" "$run/root/.cargo/bin" "$run$cargo_bin"
(cd "$CRIUS_REPO" && git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$run/src/crius"
# The machine's own network setup is not crius's to install: its resolver, the local CAs it trusts
# (a TLS-inspecting egress proxy's, say; ca-certificates, installed by setup.sh, takes them in) and
# the proxy and CA-bundle variables of the environment CI runs in.
cp /etc/resolv.conf "$run/etc/resolv.conf"
if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$run/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$run/usr/local/share/ca-certificates/"
fi
passenv=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY SSL_CERT_FILE SSL_CERT_DIR \
    CURL_CA_BUNDLE REQUESTS_CA_BUNDLE PIP_CERT PIP_INDEX_URL CARGO_HTTP_CAINFO; do
    [ -z "${!v:-}" ] || passenv+=("$v=${!v}")
done
[ -z "$rustup_home" ] || mkdir -p "$run$rustup_home"
cgroups_before=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d 2>/dev/null | sort)

# Inside private mount + PID namespaces: mounts, chroot, the two steps. Each step's output goes to
# its own log, shown in full on failure together with the lines that name a missing thing.
inner=$(cat <<'INNER'
set -euo pipefail
run=$1 cargo_bin=$2 rustup_home=$3; shift 3
passenv=("$@")
# The root must be a mount point, as / is on a machine: the pod's pause makes its / rslave.
mount --bind "$run" "$run"
mount -t proc proc "$run/proc"
mount --rbind /sys "$run/sys"
mount --rbind /dev "$run/dev"
mount -t tmpfs -o mode=755 tmpfs "$run/run"
mount -t tmpfs -o mode=1777 tmpfs "$run/tmp"
mount --bind -o ro "$cargo_bin" "$run$cargo_bin"
mount -o remount,bind,ro "$run$cargo_bin"
if [ -n "$rustup_home" ]; then
    mount --bind "$rustup_home" "$run$rustup_home"
    mount -o remount,bind,ro "$run$rustup_home"
fi
step() {
    local name=$1; shift
    echo "[fresh-check $(date +%H:%M:%S)] $name" >&2
    if ! chroot "$run" /usr/bin/env -i HOME=/root TERM=dumb CI="${CI:-}" \
        PATH="$cargo_bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        ${rustup_home:+RUSTUP_HOME=$rustup_home} CARGO_HOME=/root/.cargo "${passenv[@]}" \
        bash -c "cd /src/crius && $*" > "$run/step-$name.log" 2>&1; then
        tail -40 "$run/step-$name.log" >&2
        echo "fresh-check: FAILED at step '$name' on a fresh Debian 12 root; what was missing:" >&2
        grep -E -i "not found|could not find|no such file|unable to locate|is not installed|missing" \
            "$run/step-$name.log" | grep -v '^debconf:' | sort -u | head -20 | sed 's/^/  /' >&2 || true
        exit 1
    fi
}
step setup "hack/setup.sh"
# The demo, offline: a network namespace with loopback only.
step demo "unshare --net sh -c 'ip link set lo up && CARGO_NET_OFFLINE=true hack/demo.sh'"
grep -q "hello from crius: pod" "$run/step-demo.log" || {
    tail -40 "$run/step-demo.log" >&2
    echo "fresh-check: FAILED: the demo ran but did not show the pod's output" >&2
    exit 1
}
INNER
)
rc=0
unshare --mount --pid --fork --propagation private bash -c "$inner" fresh-check "$run" "$cargo_bin" "$rustup_home" "${passenv[@]}" || rc=$?

# Cgroup dirs the demo's containers left in the host's hierarchies (the namespaces ended, the dirs stay).
comm -13 <(printf '%s\n' "$cgroups_before") <(find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -type d 2>/dev/null | sort) \
    | sort -r | while read -r d; do rmdir "$d" 2>/dev/null || true; done
[ "$rc" = 0 ] && sed -n '/----- criusctl logs/,/^-----------/p' "$run/step-demo.log" >&2
[ "$keep" = 1 ] || rm -rf "$run"
[ "$rc" = 0 ] || crius_die "fresh-check failed (rc $rc)"
crius_log "fresh-check passed: setup, build and demo on a fresh Debian 12 root in $(($(date +%s) - started)) s"
