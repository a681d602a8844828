#!/usr/bin/env bash
# Drive criusd with the real crictl: the flows the criusd issue names (pull, runp, create, start, logs,
# exec, attach, port-forward, stats, inspect, stop, remove), each checked. Uses the dev stack
# (hack/dev-up.sh) and leaves it running. Debian has no crictl package: pass a crictl binary
# (CRICTL=/path, or on PATH), e.g. one built from kubernetes-sigs/cri-tools.
#   hack/crictl-check.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
crius_need_root

crictl=${CRICTL:-$(command -v crictl || true)}
[ -n "$crictl" ] && [ -x "$crictl" ] || crius_die "no crictl: set CRICTL=/path/to/crictl"
endpoint="unix://$CRIUS_DEV_RUN/crius.sock"
[ -S "$CRIUS_DEV_RUN/crius.sock" ] || crius_die "criusd is not up: run hack/dev-up.sh"
export CONTAINER_RUNTIME_ENDPOINT=$endpoint IMAGE_SERVICE_ENDPOINT=$endpoint
c() { "$crictl" --timeout 60s "$@"; }
work=$(mktemp -d)
pod=""
cleanup() {
    if [ -n "$pod" ]; then c stopp "$pod" >/dev/null 2>&1 || true; c rmp "$pod" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
check() { # check <what> <expected substring> <actual>
    case "$3" in *"$2"*) crius_log "ok: $1" ;; *) crius_die "$1: expected '$2' in: $3" ;; esac
}
image="$CRIUS_REGISTRY/crius/busybox:latest"
demo="$(dirname "$0")/demo"

check "version" "RuntimeName:  crius" "$(c version)"
check "info" '"RuntimeReady"' "$(c info)"
check "pull" "sha256:" "$(c pull "$image")"
check "images" "crius/busybox" "$(c images)"
pod=$(c runp "$demo/pod.yaml")
check "pods" "crius-demo" "$(c pods --id "$pod")"
ctr=$(c create "$pod" "$demo/container.yaml" "$demo/pod.yaml")
c start "$ctr" >/dev/null
sleep 1
check "ps" "Running" "$(c ps --id "$ctr")"
check "logs" "hello from crius" "$(c logs "$ctr")"
check "exec" "exec-ok" "$(c exec "$ctr" echo exec-ok)"
rc=0; c exec "$ctr" sh -c 'exit 3' 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || crius_die "exec: a failing command must fail"
crius_log "ok: exec exit code"
check "exec -i" "piped-in" "$(echo piped-in | c exec -i "$ctr" cat)"
size=$( (sleep 1; echo 'stty size; exit') | script -qc "stty rows 33 cols 111; $crictl exec -it $ctr sh" /dev/null | tr -d '\r')
check "exec -it follows the terminal size" "33 111" "$size"
check "inspect" '"CONTAINER_RUNNING"' "$(c inspect "$ctr")"
check "inspectp" '"SANDBOX_READY"' "$(c inspectp "$pod")"
check "stats" "hello" "$(c stats --id "$ctr")"
check "statsp" "crius-demo" "$(c statsp --id "$pod")"

cat > "$work/web.yaml" <<EOF
metadata: {name: web}
image: {image: "$image"}
command: ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 80 -h /www"]
log_path: web.log
EOF
web=$(c create "$pod" "$work/web.yaml" "$demo/pod.yaml"); c start "$web" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
c port-forward "$pod" "$port:80" >"$work/pf.log" 2>&1 &
pf=$!
for _ in $(seq 50); do grep -q Forwarding "$work/pf.log" 2>/dev/null && break; sleep 0.1; done
got=$(curl -fsS "http://127.0.0.1:$port/" || true)
kill "$pf" 2>/dev/null || true
check "port-forward" "hello-from-pod" "$got"

cat > "$work/cat.yaml" <<EOF
metadata: {name: catter}
image: {image: "$image"}
command: ["sh", "-c", "while read l; do echo got:\$l; done"]
stdin: true
stdin_once: true
log_path: cat.log
EOF
cat_ctr=$(c create "$pod" "$work/cat.yaml" "$demo/pod.yaml"); c start "$cat_ctr" >/dev/null
sleep 0.5
check "attach -i" "got:ping" "$( (echo ping; sleep 1) | timeout 5 "$crictl" attach -i "$cat_ctr" || true)"

for x in "$ctr" "$web" "$cat_ctr"; do c stop -t 2 "$x" >/dev/null; c rm "$x" >/dev/null; done
[ -z "$(c ps -a --pod "$pod" -q)" ] || crius_die "rm: containers still listed"
c stopp "$pod" >/dev/null; c rmp "$pod" >/dev/null
[ -z "$(c pods --id "$pod" -q)" ] || crius_die "rmp: pod still listed"
pod=""
crius_log "ok: stop and remove"
check "rmi" "Deleted" "$(c rmi "$image")"
crius_log "crictl ($("$crictl" --version)) drove criusd through every flow"
