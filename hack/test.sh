#!/usr/bin/env bash
# hack/test.sh — every test of ephem, as CI runs them (needs root).
#
#   hack/test.sh           all steps (as root)
#   hack/test.sh --quick   without the Kubernetes cluster tests
#
# Steps, each run even when an earlier one failed, then a summary:
#   apt      installs the Debian packages the tests need (only the missing ones)
#   gofmt    lists Go files that gofmt would change
#   vet      go vet ./...
#   lint     golangci-lint (version pinned below, built once from the Go
#            module proxy into /var/cache/ephem/bin) with .golangci.yml: errcheck, errorlint, staticcheck,
#            revive, gosec, misspell, gofmt, goimports
#   crio     builds CRI-O and crictl once into /var/cache/ephem/crio (hack/crio.sh)
#   test     go test ./... -count=1: unit tests and the local engine's
#            end-to-end tests (test/e2e/local: real processes, a real dockerd
#            from hack/dockerd.sh, a real registry on 127.0.0.1)
#   soak     hack/soak, short: 100 local sessions, 10 killed with SIGKILL,
#            against a target under load; nothing may be left behind
#   release  hack/release.sh --check: static amd64 and arm64 builds, tarballs,
#            the krew manifest (krew's validation); runs the amd64 binary
#   kube     .ci/kube.sh: a real single-node Kubernetes cluster and the
#            e2e_kube tests (the first run builds Kubernetes: ~20 minutes)
# Exits non-zero when any step failed. Always stops the test Docker daemon if
# this script started it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
# End-to-end tests fail, rather than skip, when something they need is missing.
export EPHEM_E2E=1

QUICK=0
for arg in "$@"; do
	case $arg in
	--quick) QUICK=1 ;;
	-h | --help)
		sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test.sh: unknown argument $arg (try --help)" >&2
		exit 64
		;;
	esac
done

PACKAGES=(docker.io docker-registry busybox-static mmdebstrap etcd-server containerd runc
	containernetworking-plugins iproute2 iptables openssl util-linux gcc libc6-dev libpcap0.8 tcpdump
	podman uidmap conmon asciinema gcc-aarch64-linux-gnu libc6-dev-arm64-cross file)

declare -a SUMMARY=()
FAILED=0

banner() { printf '\n==================== %s ====================\n' "$*"; }

# step NAME CMD... runs one step, recording its result and duration.
step() {
	local name=$1 start=$SECONDS rc=0
	shift
	banner "$name: $*"
	"$@" || rc=$?
	local took=$((SECONDS - start))
	if [ "$rc" -eq 0 ]; then
		SUMMARY+=("$(printf '%-6s PASS  %5ss' "$name" "$took")")
	else
		SUMMARY+=("$(printf '%-6s FAIL  %5ss  (exit %s)' "$name" "$took" "$rc")")
		FAILED=1
		echo "test.sh: step $name FAILED (exit $rc)" >&2
	fi
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "all ${#PACKAGES[@]} packages present"
		return
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || return 1
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

check_gofmt() {
	local files
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		files=$(git ls-files -z '*.go' | xargs -0 gofmt -l 2>&1) || { echo "$files"; return 1; }
	else
		files=$(gofmt -l . 2>&1) || { echo "$files"; return 1; }
	fi
	if [ -n "$files" ]; then
		echo "gofmt would change:"
		echo "$files"
		return 1
	fi
	echo "gofmt clean"
}

run_kube() {
	if [ ! -x .ci/kube.sh ]; then
		echo "!!!!!!!! .ci/kube.sh is missing or not executable: the Kubernetes tests DID NOT RUN !!!!!!!!" >&2
		return 1
	fi
	.ci/kube.sh
}

# The test Docker daemon is shared with test binaries through a lock file
# (see internal/e2eutil): each user holds it shared; whoever can take it
# exclusively is the last user and may stop the daemon.
DOCKER_RUN_DIR=${EPHEM_TEST_DOCKER_RUN:-/run/ephem-test}
DOCKER_USERS=$DOCKER_RUN_DIR/dockerd.users
DOCKERD_STARTED=0
cleanup() {
	local rc=$?
	if [ "$DOCKERD_STARTED" -eq 1 ]; then
		banner "cleanup: stopping the test Docker daemon"
		exec 8>&- # drop our shared lock
		local src=0
		flock -n -E 200 "$DOCKER_USERS" hack/dockerd.sh stop || src=$?
		case $src in
		0) ;;
		200)
			# Test binaries still running (a developer's) use it: the last of them stops it.
			echo "test.sh: the test Docker daemon is still in use; its last user will stop it" >&2
			touch "$DOCKER_RUN_DIR/dockerd.started-by-tests"
			;;
		*) echo "test.sh: warning: hack/dockerd.sh stop failed (exit $src)" >&2 ;;
		esac
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "test.sh: needs root (the end-to-end tests start containers): run it as root" >&2; exit 77; }
command -v go >/dev/null || { echo "test.sh: Go is not installed (expected in /usr/local/go)" >&2; exit 69; }
echo "test.sh: $(go version), $(uname -sr), CI=${CI:-}"

step apt install_packages
# Start the daemon once for every test binary (they share it through
# internal/e2eutil); stopped on exit if it was not already running.
mkdir -p "$DOCKER_RUN_DIR"
exec 8>>"$DOCKER_USERS"
flock -s 8
if ! hack/dockerd.sh status 2>/dev/null; then
	DOCKERD_STARTED=1
	hack/dockerd.sh start >/dev/null 8>&- || echo "test.sh: warning: could not start the test Docker daemon; docker tests will try again" >&2
fi
# run_lint builds the pinned golangci-lint once into /var/cache/ephem (as
# the cluster caches what it builds) and runs it.
LINT_VERSION=v2.15.0
run_lint() {
	local bin=/var/cache/ephem/bin/golangci-lint-$LINT_VERSION
	if [ ! -x "$bin" ]; then
		mkdir -p /var/cache/ephem/bin || return 1
		GOBIN=$(mktemp -d /var/cache/ephem/bin/.build-XXXXXX) || return 1
		GOBIN=$GOBIN go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$LINT_VERSION" &&
			mv "$GOBIN/golangci-lint" "$bin"
		rm -rf "$GOBIN"
		[ -x "$bin" ] || return 1
	fi
	"$bin" run --build-tags e2e_kube ./...
}
step gofmt check_gofmt
step vet go vet ./...
step lint run_lint
# CRI-O (for cri:// tests) is built from the module proxy once and cached.
step crio hack/crio.sh build
step test go test ./... -count=1 -timeout 30m
step soak go run ./hack/soak -sessions 100 -kill-every 10 -cold-every 25
step release hack/release.sh --check
if [ "$QUICK" -eq 1 ]; then
	SUMMARY+=("$(printf '%-6s SKIP  (--quick)' kube)")
else
	step kube run_kube
fi

banner summary
printf '%s\n' "${SUMMARY[@]}"
if [ "$FAILED" -ne 0 ]; then
	echo "test.sh: FAILED"
	exit 1
fi
echo "test.sh: all steps passed"
