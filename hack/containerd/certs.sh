#!/usr/bin/env bash
# Write a registry hosts dir (containerd hosts.toml format) that lets the local registry be pulled over
# plain http:  certs.sh CERTS_D_DIR [REGISTRY]
set -euo pipefail
dir=$1 reg=${2:-127.0.0.1:5000}
mkdir -p "$dir/$reg"
cat > "$dir/$reg/hosts.toml" <<CFG
server = "http://$reg"

[host."http://$reg"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
CFG
