#!/usr/bin/env bash
# A Python venv with the real grpcio client from PyPI and CRI stubs generated from proto/ by
# grpcio-tools: what test/tests/criusd_grpc_authority.rs drives criusd with (grpc-core clients send
# the socket path percent-encoded as :authority). Idempotent: does nothing when the venv has the
# pinned versions and stubs of the current api.proto. Prints the venv's dir.
#   hack/grpcio-venv.sh            # → /opt/crius/grpcio-venv (CRIUS_GRPCIO_VENV to change)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VENV="${CRIUS_GRPCIO_VENV:-/opt/crius/grpcio-venv}"
GRPCIO=1.85.3
GRPCIO_TOOLS=1.85.1
PROTO="$CRIUS_REPO/proto/proto/runtime/v1/api.proto"
stamp="grpcio $GRPCIO tools $GRPCIO_TOOLS proto $(sha256sum "$PROTO" | cut -d' ' -f1)"

if [ "$(cat "$VENV/.crius-stamp" 2>/dev/null)" != "$stamp" ]; then
    # Debian's python (python3-venv, from hack/setup.sh), whatever else is first on PATH.
    py=/usr/bin/python3; [ -x "$py" ] || py=python3
    crius_log "making $VENV (grpcio $GRPCIO from PyPI)"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "grpcio==$GRPCIO" "grpcio-tools==$GRPCIO_TOOLS"
    mkdir -p "$VENV/cri"
    "$VENV/bin/python" -m grpc_tools.protoc -I "$(dirname "$PROTO")" \
        --python_out="$VENV/cri" --grpc_python_out="$VENV/cri" "$PROTO"
    echo "$stamp" > "$VENV/.crius-stamp"
fi
echo "$VENV"
