#!/usr/bin/env bash
# Start Debian's docker-registry (distribution v2) on 127.0.0.1:5000, storage under a crius-owned dir.
# Idempotent: a registry this script started and that still answers is left as it is.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
crius_need_root

pidfile="$CRIUS_DEV_RUN/registry.pid"
if crius_pid_alive "$pidfile" && crius_wait_http "http://$CRIUS_REGISTRY/v2/" 2; then
    crius_log "registry already up on $CRIUS_REGISTRY (pid $(cat "$pidfile"))"
    exit 0
fi
if curl -fsS -o /dev/null "http://$CRIUS_REGISTRY/v2/" 2>/dev/null; then
    # Someone else's registry answers there; using it would push our images into it.
    crius_die "$CRIUS_REGISTRY already serves a registry that crius did not start; stop it or set CRIUS_REGISTRY"
fi
command -v docker-registry >/dev/null || crius_die "docker-registry missing: run hack/setup.sh"

mkdir -p "$CRIUS_DEV_RUN/registry" "$CRIUS_DEV_LIB/registry"
cat > "$CRIUS_DEV_RUN/registry/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $CRIUS_DEV_LIB/registry
  delete:
    enabled: true
http:
  addr: $CRIUS_REGISTRY
CFG
setsid docker-registry serve "$CRIUS_DEV_RUN/registry/config.yml" \
    </dev/null >"$CRIUS_DEV_RUN/registry/registry.log" 2>&1 &
echo $! > "$pidfile"
crius_wait_http "http://$CRIUS_REGISTRY/v2/" 20 \
    || crius_die "registry did not answer on $CRIUS_REGISTRY; log: $CRIUS_DEV_RUN/registry/registry.log"
crius_log "registry up on $CRIUS_REGISTRY (pid $(cat "$pidfile")), storage $CRIUS_DEV_LIB/registry"
