#!/usr/bin/env bash
# Write a CNI conflist (bridge + host-local + portmap + loopback) into a crius-owned net.d dir.
#   cni.sh NET_D_DIR NAME BRIDGE SUBNET LEASE_DIR
# The lease dir is crius-owned too, so leak checks can see exactly this network's IP leases.
# ipMasq stays off: pods talk to each other and to the host; nothing here is routed off the machine.
set -euo pipefail
[ $# = 5 ] || { echo "usage: $0 NET_D_DIR NAME BRIDGE SUBNET LEASE_DIR" >&2; exit 2; }
netd=$1 name=$2 bridge=$3 subnet=$4 leases=$5
mkdir -p "$netd" "$leases"
cat > "$netd/10-$name.conflist" <<CFG
{
  "cniVersion": "1.0.0",
  "name": "$name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$subnet" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$leases"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
CFG
