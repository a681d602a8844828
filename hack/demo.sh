#!/usr/bin/env bash
# The README's demo: set up a fresh Debian 12 machine, bring the dev stack up (registry, private
# containerd, criusd), run a pod with one container through criusd with criusctl, show its output,
# then remove the pod and take the stack down. As root, from anywhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
crius_need_root

"$here/setup.sh"
rm -rf /var/log/crius-demo     # the pod's log_directory (hack/demo/pod.yaml): start from nothing
trap '"$here/dev-down.sh" >/dev/null 2>&1 || true; rm -rf /var/log/crius-demo' EXIT
CRIUS_DEV_NO_BUILD=1 "$here/dev-up.sh"

export CONTAINER_RUNTIME_ENDPOINT="unix://$CRIUS_DEV_RUN/crius.sock"
criusctl() { "$CRIUS_TARGET_DIR/debug/criusctl" "$@"; }

crius_log "criusctl run: pod + pull from the local registry + container"
ctr_id=$(criusctl run "$here/demo/container.yaml" "$here/demo/pod.yaml")
pod_id=$(criusctl ps --id "$ctr_id" -o json | jq -r '.containers[0].podSandboxId')
for _ in $(seq 1 50); do
    [ -s "/var/log/crius-demo/hello.log" ] && break
    sleep 0.1
done
echo
criusctl pods --id "$pod_id"
echo
criusctl ps --id "$ctr_id"
echo
echo "----- criusctl logs $ctr_id -----"
criusctl logs "$ctr_id"
echo "----- criusctl exec -s $ctr_id cat /etc/resolv.conf -----"
criusctl exec -s "$ctr_id" cat /etc/resolv.conf
echo "----- CRI log file /var/log/crius-demo/hello.log -----"
cat /var/log/crius-demo/hello.log
echo "----------------------------------------------------"
echo
crius_log "removing the pod"
criusctl stopp "$pod_id" >/dev/null
criusctl rmp "$pod_id" >/dev/null
crius_log "demo done; taking the dev stack down"
