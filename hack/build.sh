#!/usr/bin/env bash
# Build every crius binary the dev stack and the tests run:
#   target/debug/{criusd,criusctl,containerd-shim-crius-v2}  and  target/release/crius-pause (static).
# The pause must be static (it runs in a rootfs that holds nothing else); crt-static is passed to the
# final link of that one binary only, so the rest of the workspace is untouched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$CRIUS_REPO"
cargo build --workspace --bins --quiet
if [ -f sandboxer/src/bin/crius-pause.rs ]; then
    cargo rustc -p crius-sandboxer --bin crius-pause --release --quiet -- -C target-feature=+crt-static
fi
