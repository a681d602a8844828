#!/usr/bin/env bash
# Stop the dev criusd (SIGTERM: it shuts down cleanly and leaves containers running). Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
crius_stop_pidfile "$CRIUS_DEV_RUN/criusd.pid" criusd
rm -f "$CRIUS_DEV_RUN/crius.sock"
