#!/usr/bin/env bash
# .ci/kube.sh runs ephem's Kubernetes end-to-end tests on the real test
# cluster: hack/cluster/up.sh, the e2e_kube tests, then the up/down/up
# lifecycle test, and always hack/cluster/down.sh (even when tests fail),
# followed by an assertion that nothing of the cluster is left on the host.
# It exits with the tests' status (or the cleanup's, if that fails).
#
# Needs root. Set EPHEM_CI_ARTIFACTS=DIR to keep the cluster's logs there.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local status=$?
	trap - EXIT
	echo "kube.sh: stopping the cluster" >&2
	if [[ -n ${EPHEM_CI_ARTIFACTS:-} ]]; then
		export EPHEM_CLUSTER_KEEP_LOGS="$EPHEM_CI_ARTIFACTS/cluster-logs"
	fi
	if ! hack/cluster/down.sh; then
		echo "kube.sh: down.sh failed" >&2
		status=1
	fi
	if ! hack/cluster/check-clean.sh; then
		echo "kube.sh: the cluster left something behind" >&2
		status=1
	fi
	echo "kube.sh: exit status $status" >&2
	exit "$status"
}
trap cleanup EXIT

start=$SECONDS
hack/cluster/up.sh
echo "kube.sh: cluster up in $((SECONDS - start)) s" >&2

status=0
tests=$SECONDS
if go test -tags e2e_kube ./test/e2e/kube/... -count=1 -v -timeout 40m; then
	echo "kube.sh: e2e_kube tests passed in $((SECONDS - tests)) s" >&2
else
	status=$?
	echo "kube.sh: e2e_kube tests FAILED (status $status) after $((SECONDS - tests)) s" >&2
fi

# The lifecycle test runs even if the tests above failed: it checks the
# harness itself (down leaves nothing behind, up works again).
lifecycle=$SECONDS
if go test -tags e2e_kube_lifecycle ./test/e2e/kube/... -run '^TestLifecycle$' -count=1 -v -timeout 20m; then
	echo "kube.sh: up/down/up lifecycle test passed in $((SECONDS - lifecycle)) s" >&2
else
	s=$?
	echo "kube.sh: up/down/up lifecycle test FAILED (status $s) after $((SECONDS - lifecycle)) s" >&2
	((status != 0)) || status=$s
fi
exit "$status"
