#!/usr/bin/env bash
# Run crius's cgroup-v2/systemd integration tests in a Debian 12 guest (systemd 252 as PID 1, cgroup v2
# only) under qemu, and print their output. Called by hack/test.sh; runs alone too, as root:
#   hack/vm/test.sh                     # the guest set (GUEST_TESTS below)
#   hack/vm/test.sh vm_systemd ...      # only these test files (test/tests/<name>.rs)
# On the host: builds crius and the test executables (cargo), brings up the local registry with the
# local images, builds or reuses the guest image (hack/vm/image.sh). In the guest: the executables run
# one test at a time with the strict leak check (nothing else runs there), against the host-built
# binaries and the registry's storage, shared read-only over 9p (hack/vm/run.sh, hack/vm/guest.sh).
# Ends with the test runner's summary line; exits non-zero if any test failed or the guest did not
# finish. Bounded: CRIUS_VM_BUDGET seconds in all (default 1800), image build included; qemu is
# killed when the budget is spent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
crius_need_root
cd "$CRIUS_REPO"
t0=$(date +%s)
budget=${CRIUS_VM_BUDGET:-1800}
left() { echo $(( budget - ($(date +%s) - t0) )); }

# Test files run in the guest. vm_* hold the guest-only tests (#[ignore]d on the host: they need
# systemd as PID 1 and cgroup v2); the others are host tests whose cgroup paths differ on v2, or
# whose real run needs the guest (criusd_crun: crun 1.8 refuses the hosts' hybrid cgroups).
GUEST_TESTS=(criusd_oom criusd_crun vm_systemd)
[ "$#" -gt 0 ] && GUEST_TESTS=("$@")

"$CRIUS_REPO/hack/build.sh"
crius_log "building the guest's test executables"
test_args=()
for t in "${GUEST_TESTS[@]}"; do test_args+=(--test "$t"); done
exes=$(cargo test -p crius-test "${test_args[@]}" --no-run --quiet --message-format=json \
    | jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null) | "\(.target.name) \(.executable)"')

registry_was_up=0
crius_pid_alive "$CRIUS_DEV_RUN/registry.pid" && registry_was_up=1
job=$(mktemp -d /tmp/crius-vm.XXXXXX)
cleanup() {
    # A failed run's output and console stay for a look; a passing one leaves nothing.
    if [ "${rc:-1}" = 0 ]; then rm -rf "$job"; else crius_log "guest output and console kept in $job"; fi
    [ "$registry_was_up" = 1 ] || "$CRIUS_REPO/hack/registry-down.sh"
}
trap cleanup EXIT
"$CRIUS_REPO/hack/registry-up.sh"
"$CRIUS_REPO/hack/images/build.sh"
timeout "$(left)" "$here/image.sh" >/dev/null || crius_die "the guest image was not built within the budget"

lines=""
for t in "${GUEST_TESTS[@]}"; do
    exe=$(awk -v t="$t" '$1 == t {print $2}' <<< "$exes")
    [ -n "$exe" ] || crius_die "no test executable for $t"
    case "$t" in vm_*) args="--ignored --test-threads=1" ;; *) args="--test-threads=1" ;; esac
    lines+="$exe $args"$'\n'
done
cp "$here/guest.sh" "$job/guest.sh"
{
    printf 'export CRIUS_REPO=%q CRIUS_TARGET_DIR=%q\n' "$CRIUS_REPO" "$CRIUS_TARGET_DIR"
    printf 'export CRIUS_LEAK_CHECK=strict RUST_BACKTRACE=1\n'
    # hack/test.sh's "a skip is a failure" holds in the guest too.
    printf 'export CRIUS_TEST_NO_SKIP=%q\n' "${CRIUS_TEST_NO_SKIP:-}"
    printf 'CRIUS_VM_TESTS=%q\n' "$lines"
} > "$job/env"
: > "$job/output.log"

crius_log "booting the guest (TCG; $(left) s left of the budget): ${GUEST_TESTS[*]}"
tail -n +1 -f "$job/output.log" &
tail_pid=$!
qemu_rc=0
"$here/run.sh" "$job" "$(left)" || qemu_rc=$?
sleep 0.5
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true

if ! [ -s "$job/rc" ]; then
    crius_log "the guest did not finish (qemu status $qemu_rc; 137 = killed at the budget). Console tail:"
    tail -n 30 "$job/console.log" >&2
    exit 1
fi
rc=$(cat "$job/rc")
crius_log "guest tests done in $(( $(date +%s) - t0 )) s, status $rc"
grep -h '^test result:' "$job/output.log" || true
exit "$rc"
