#!/usr/bin/env bash
# Fetch containerd 2.1 for crius's tests and dev stack, beside (never over) the system's containerd.
#
# Debian 12 ships containerd 1.6; Debian forky (testing, the release after trixie, whose own containerd
# is 1.7) ships 2.1.9, whose binaries need only glibc 2.34 and so run on Debian 12. Its runc does not
# (glibc 2.38): containerd 2.1 runs Debian 12's runc from PATH. The package comes from Debian's mirror
# through apt with a private config for that one suite: its own sources list, preferences, state and
# cache under $CRIUS_DEV_LIB/apt-forky; the system's apt sources are never touched. Download only:
# `dpkg-deb -x` unpacks it into a staging dir and its binaries land in
#   $CRIUS_CONTAINERD21/bin/{containerd,ctr,containerd-shim-runc-v2}   (default /opt/crius/containerd-2.1)
# Idempotent: nothing is fetched when that prefix already holds a containerd 2.1.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
crius_need_root

prefix="$CRIUS_CONTAINERD21"
if "$prefix/bin/containerd" --version 2>/dev/null | grep -q ' 2\.1\.'; then
    crius_log "containerd 2.1 present: $prefix ($("$prefix/bin/containerd" --version | awk '{print $3}'))"
    exit 0
fi

apt_dir="$CRIUS_DEV_LIB/apt-forky"
mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d" \
    "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
touch "$apt_dir/state/status"   # an empty dpkg status: this apt knows nothing installed
cat >"$apt_dir/etc/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(crius_debian_mirror) forky main
EOF
# Only 2.1: forky is a moving suite, and a later containerd there must fail loudly here, not slip in.
cat >"$apt_dir/etc/preferences" <<'EOF'
Package: containerd
Pin: version 2.1.*
Pin-Priority: 1001

Package: containerd
Pin: version *
Pin-Priority: -1
EOF
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
    -o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::status=$apt_dir/state/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Architecture=amd64"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "APT::Sandbox::User=root"
    # The machine's mirror may be a dated snapshot: a testing suite's Release then carries a
    # Valid-Until in the past. Its signature (signed-by above) is still checked.
    -o "Acquire::Check-Valid-Until=false"
)

deb=$(ls "$apt_dir"/debs/containerd_2.1.*_amd64.deb 2>/dev/null | tail -1 || true)
if [ -z "$deb" ]; then
    crius_log "fetching containerd 2.1 from Debian forky (private apt config: $apt_dir)"
    apt-get "${apt_opts[@]}" -qq update
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download containerd)
    deb=$(ls "$apt_dir"/debs/containerd_2.1.*_amd64.deb 2>/dev/null | tail -1 || true)
    [ -n "$deb" ] || crius_die "Debian forky has no containerd 2.1 any more (see $apt_dir/debs)"
fi

mkdir -p "$(dirname "$prefix")"
stage=$(mktemp -d "$(dirname "$prefix")/.containerd-2.1.XXXXXX")
trap 'rm -rf "$stage"' EXIT
dpkg-deb -x "$deb" "$stage/pkg"
mkdir -p "$stage/new/bin"
for b in containerd ctr containerd-shim-runc-v2; do install -m 0755 "$stage/pkg/usr/bin/$b" "$stage/new/bin/$b"; done
cp "$stage/pkg/usr/share/doc/containerd/copyright" "$stage/new/copyright"
basename "$deb" >"$stage/new/SOURCE"
"$stage/new/bin/containerd" --version | grep -q ' 2\.1\.' || crius_die "$(basename "$deb") holds no containerd 2.1"
"$stage/new/bin/ctr" --version >/dev/null
rm -rf "$prefix"
mv "$stage/new" "$prefix"
crius_log "containerd 2.1 installed: $prefix ($("$prefix/bin/containerd" --version | awk '{print $3}'), $("$prefix/bin/ctr" --version))"
