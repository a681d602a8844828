#!/usr/bin/env bash
# Run all of crius's tests — the README's test command, and what CI (.ci/run) calls.
# On a fresh Debian 12 machine, as root: installs packages and builds (hack/setup.sh), checks that a
# clean Debian 12 root needs nothing more (hack/fresh-check.sh), checks format and
# lints, brings up the local registry with the local images, runs every test one at a time with the
# strict leak check, and stops the registry again if it started it. Non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
crius_need_root
cd "$CRIUS_REPO"
export CRIUS_TEST_NO_SKIP=1   # a test that cannot run here fails instead of skipping (crius_test::skip)

"$here/setup.sh"

# The README's promise on a machine that has only a Rust toolchain: setup, build and demo in a clean
# Debian 12 root (hack/fresh-check.sh). Fails naming the step a fresh machine would miss.
"$here/fresh-check.sh"

crius_log "cargo fmt --check"
cargo fmt --all -- --check
crius_log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

registry_was_up=0
crius_pid_alive "$CRIUS_DEV_RUN/registry.pid" && registry_was_up=1
[ "$registry_was_up" = 1 ] || trap '"$here/registry-down.sh"' EXIT
"$here/registry-up.sh"
"$here/images/build.sh"

crius_log "cargo test (integration tests one at a time, strict leak check; a SKIP fails)"
CRIUS_LEAK_CHECK=strict cargo test --workspace --no-fail-fast -- --test-threads=1

# The same integration suites again on containerd 2.1 (hack/containerd/fetch-2.1.sh, run by setup.sh):
# every crius-test suite, 5–6 minutes (built already by the pass above); README "Tests" says which containerds are tested.
crius_log "cargo test -p crius-test on containerd 2.1 (strict leak check)"
CRIUS_CONTAINERD=2.1 CRIUS_LEAK_CHECK=strict cargo test -p crius-test --no-fail-fast -- --test-threads=1

# cgroup v2 and the systemd cgroup driver, in a Debian 12 guest under qemu (README: Tests).
"$here/vm/test.sh"
