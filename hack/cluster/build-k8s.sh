#!/usr/bin/env bash
# build-k8s.sh builds the pinned Kubernetes binaries from the Go module proxy
# and caches them by version under $EPHEM_K8S_CACHE (default
# /var/cache/ephem/k8s). It prints the bin directory as its last line.
# A warm cache returns immediately; a cold build takes about 16 minutes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

cache_root="${EPHEM_K8S_CACHE:-/var/cache/ephem/k8s}"
dest="$cache_root/$K8S_VERSION/bin"
cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

complete() {
	[[ -f "$dest/.complete" ]] || return 1
	local c
	for c in "${cmds[@]}"; do [[ -x "$dest/$c" ]] || return 1; done
}

if complete; then
	echo "$dest"
	exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
echo "build-k8s: waiting for the build lock $cache_root/.build.lock" >&2
flock 9
if complete; then
	echo "$dest"
	exit 0
fi

work="$(mktemp -d "$cache_root/.build-$K8S_VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
echo "build-k8s: building Kubernetes $K8S_VERSION in $work (cold build: about 16 minutes on 2 cores)" >&2

export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=1
cd "$work"
go mod init ephem.local/k8sbuild >/dev/null 2>&1
go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
# Replace each staging module that k8s.io/kubernetes points at ./staging with
# the published module of the matching version.
mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$modfile")
[[ ${#staging[@]} -gt 0 ]] || { echo "build-k8s: no staging modules found in $modfile" >&2; exit 1; }
for m in "${staging[@]}"; do
	go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
done
cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
go mod tidy >&2

minor="${K8S_VERSION#v*.}"
minor="${minor%%.*}"
major="${K8S_VERSION#v}"
major="${major%%.*}"
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
mkdir -p out
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
go build -trimpath -ldflags "$ldflags" -o out/ "${pkgs[@]}" >&2
./out/kube-apiserver --version >&2
touch out/.complete
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv out "$dest"
echo "build-k8s: built Kubernetes $K8S_VERSION in $((SECONDS - start)) s into $dest" >&2
echo "$dest"
