#!/usr/bin/env bash
# Stop the registry registry-up.sh started. Its storage stays (images survive a restart);
# `--purge` removes it too. Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
crius_stop_pidfile "$CRIUS_DEV_RUN/registry.pid" registry
rm -rf "$CRIUS_DEV_RUN/registry"
if [ "${1:-}" = "--purge" ]; then rm -rf "$CRIUS_DEV_LIB/registry"; fi
