#!/usr/bin/env bash
# Build every crius binary the dev stack and the tests run:
#   target/debug/{criusd,criusctl,crius-logger,containerd-shim-crius-v2}  and  target/release/crius-pause (static).
# The pause must be static (it runs in a rootfs that holds nothing else); crt-static is passed to the
# final link of that one binary only, so the rest of the workspace is untouched.
#
# `--node` also builds what a node should run, with profile `node` (opt-level s, fat LTO; see
# Cargo.toml), into target/node (`--shim`: only the shim): criusd, criusctl, crius-logger, and
# containerd-shim-crius-v2 linked static as well: one shim runs per pod, and static halves its
# resident memory (no shared-library mappings, fewer text pages touched).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CRIUS_REPO"
cargo build --workspace --bins --quiet
if [ -f sandboxer/src/bin/crius-pause.rs ]; then
    cargo rustc -p crius-sandboxer --bin crius-pause --release --quiet -- -C target-feature=+crt-static
fi
case "${1:-}" in
--node) cargo build --profile node --quiet -p crius-cri-front --bins ;;&
--node | --shim)
    cargo rustc --profile node --quiet -p crius-shim-runc --bin containerd-shim-crius-v2 \
        -- -C target-feature=+crt-static
    strip "$CRIUS_TARGET_DIR/node/containerd-shim-crius-v2"
    ;;
esac
