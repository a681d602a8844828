#!/usr/bin/env bash
# Build crius's local OCI images from Debian packages and push them to the local registry.
#
#   $CRIUS_REGISTRY/crius/busybox:latest      Debian's busybox (dynamically linked) + the libc it needs:
#                                             two layers (libc/base files, then busybox + applet links).
#   $CRIUS_REGISTRY/crius/config-test:latest  busybox + a third layer; its config sets User (by name),
#                                             Env, WorkingDir, Entrypoint and Cmd, so CRI's image-config
#                                             merging is exercised.
#   $CRIUS_REGISTRY/crius/pause:latest        crius's static pause (target/release/crius-pause), when built:
#                                             the sandbox image for containerd's own CRI plugin.
#
# Packages come from apt as .deb files (`apt-get download`), not from the host's /bin, so the images are
# the same whatever the host has installed. Rebuilt only when an input changes (stamp file).
# `build.sh --fetch` only downloads the packages (the one step that needs the network).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
crius_need_root
for tool in umoci skopeo dpkg-deb; do command -v $tool >/dev/null || crius_die "$tool missing: run hack/setup.sh"; done

images="$CRIUS_DEV_LIB/images"
oci="$images/oci"
debs="$images/debs"
pause_bin="$CRIUS_TARGET_DIR/release/crius-pause"
mkdir -p "$debs"

# The .deb files of the packages the images are made of.
fetch_deb() {
    local pkg=$1 ver
    ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    ls "$debs/${pkg}_"*.deb >/dev/null 2>&1 && return 0
    (cd "$debs" && { apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$pkg" >/dev/null 2>&1; }; }) \
        || crius_die "apt-get download $pkg ($ver) failed"
}
fetch_deb busybox
fetch_deb libc6
# `--fetch`: only fetch the packages (hack/setup.sh does, so what follows needs no network).
[ "${1:-}" = --fetch ] && exit 0

stamp_now=$(
    cd "$debs" && ls ./*.deb
    sha256sum < "$CRIUS_REPO/hack/images/build.sh"
    if [ -x "$pause_bin" ]; then sha256sum < "$pause_bin"; fi
)
stamp_file="$images/stamp"
have_all=1
for repo in busybox config-test; do
    curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$CRIUS_REGISTRY/v2/crius/$repo/manifests/latest" 2>/dev/null || have_all=0
done
if [ "$have_all" = 1 ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_now" ]; then
    crius_log "images up to date in $CRIUS_REGISTRY"
    exit 0
fi

work=$(mktemp -d /tmp/crius-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$(ls "$debs"/busybox_*.deb)" "$work/busybox"
dpkg-deb -x "$(ls "$debs"/libc6_*.deb)" "$work/libc6"

rm -rf "$oci"
umoci init --layout "$oci"

# --- busybox: layer 1, base files and the libc busybox links ---
umoci new --image "$oci:busybox"
umoci unpack --image "$oci:busybox" "$work/bundle" >/dev/null
root="$work/bundle/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var/www,tmp,proc,sys,dev,lib/x86_64-linux-gnu,lib64}
chmod 1777 "$root/tmp"
for lib in ld-linux-x86-64.so.2 libc.so.6 libresolv.so.2; do
    cp -a "$work/libc6/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/"
done
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
staff:x:50:app
app:x:1000:
nogroup:x:65534:
G
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
umoci repack --refresh-bundle --image "$oci:busybox" "$work/bundle" >/dev/null

# --- busybox: layer 2, the binary and one link per applet ---
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
for applet in $(LD_LIBRARY_PATH="$work/libc6/lib/x86_64-linux-gnu" "$root/bin/busybox" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
done
echo '<html><body>crius busybox httpd</body></html>' > "$root/var/www/index.html"
umoci repack --refresh-bundle --image "$oci:busybox" "$work/bundle" >/dev/null
umoci config --image "$oci:busybox" --os linux --architecture amd64 --author crius \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd sh >/dev/null

# --- config-test: busybox + a home dir layer, and a config that sets everything CRI merges ---
umoci tag --image "$oci:busybox" config-test
rm -rf "$work/bundle"
umoci unpack --image "$oci:config-test" "$work/bundle" >/dev/null
mkdir -p "$root/home/app/data"
echo "seeded by the image" > "$root/home/app/data/seed.txt"
chown -R 1000:1000 "$root/home/app"
umoci repack --refresh-bundle --image "$oci:config-test" "$work/bundle" >/dev/null
umoci config --image "$oci:config-test" \
    --config.user app \
    --config.env APP_GREETING=hello-from-image --config.env APP_MODE=image \
    --config.workingdir /home/app \
    --config.entrypoint /bin/sh --config.entrypoint -c \
    --config.cmd 'echo "uid=$(id -u) gid=$(id -g) cwd=$(pwd) greeting=$APP_GREETING mode=$APP_MODE"' >/dev/null

tags=(busybox config-test)
# --- pause: crius's static pause, for containerd's own CRI plugin (sandbox_image) ---
if [ -x "$pause_bin" ]; then
    umoci new --image "$oci:pause"
    rm -rf "$work/bundle"
    umoci unpack --image "$oci:pause" "$work/bundle" >/dev/null
    install -m 0755 "$pause_bin" "$root/pause"
    umoci repack --refresh-bundle --image "$oci:pause" "$work/bundle" >/dev/null
    umoci config --image "$oci:pause" --os linux --architecture amd64 --author crius \
        --config.entrypoint /pause --config.user 65535:65535 >/dev/null
    tags+=(pause)
else
    crius_log "no $pause_bin yet: skipping the pause image (hack/build.sh builds it)"
fi
umoci gc --layout "$oci"

"$CRIUS_REPO/hack/registry-up.sh"
for tag in "${tags[@]}"; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$oci:$tag" "docker://$CRIUS_REGISTRY/crius/$tag:latest"
    crius_log "pushed $CRIUS_REGISTRY/crius/$tag:latest"
done
echo "$stamp_now" > "$stamp_file"
