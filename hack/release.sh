#!/usr/bin/env bash
# hack/release.sh — ephem's release: static linux/amd64 and linux/arm64
# binaries, tarballs, checksums, the krew manifest and man pages.
#
#   hack/release.sh DIR       writes everything into DIR (created; must be empty)
#   hack/release.sh --check   builds every architecture into a temporary
#                             directory, validates, runs the amd64 "ephem version"
#
# DIR then holds:
#   linux-ARCH/ephem                             the local engine (tag ephem_local): it
#                                                hands Kubernetes command lines to
#   linux-ARCH/kubectl-ephem                     every backend (also the kubectl plugin)
#   ephem_VERSION_linux_ARCH.tar.gz              ephem, kubectl-ephem,
#                                                README.md, LICENSE, man/*.1
#   SHA256SUMS                                   sha256 of the tarballs and binaries
#   ephem.yaml                                   the krew manifest (validated by krew)
#   man/*.1                                      the man pages
#
# The build is reproducible: the same commit gives the same bytes (-trimpath,
# an empty build ID, the commit's time as the build date, tarballs with fixed
# owners, modes and mtimes in sorted order, gzip -n). The binaries are static,
# linked against musl (hack/build.sh says why and how: Debian's musl-dev,
# the host's gcc for amd64, gcc-aarch64-linux-gnu for arm64). A static
# binary cannot dlopen the host's libpcap, so it is built with the tag
# "static": "ephem capture" filters use pkg/pcap's built-in compiler (a
# subset of tcpdump's syntax) rather than libpcap's.
#
# Environment:
#   VERSION              the version (default: the v* tag at HEAD, else
#                        v0.0.0-YYYYMMDDhhmmss-COMMIT12, as Go pseudo-versions)
#   ARCHES               the architectures (default "amd64 arm64")
#   RELEASE_URL          where the tarballs are published, for the krew manifest
#                        (default https://github.com/ephem-dev/ephem/releases/download/VERSION)
#   EPHEM_RELEASE_DIRTY  1: build a tree with uncommitted changes (stamped
#                        COMMIT-dirty); --check implies it
#   SOURCE_DATE_EPOCH    the build date (default: HEAD's commit time)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/go/bin

die() {
	echo "release.sh: $1" >&2
	exit "${2:-1}"
}

CHECK=0
OUT=
for arg in "$@"; do
	case $arg in
	--check) CHECK=1 ;;
	-h | --help)
		sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown flag $arg (try --help)" 64 ;;
	*)
		[ -z "$OUT" ] || die "one DIR only (try --help)" 64
		OUT=$arg
		;;
	esac
done
[ "$CHECK" -eq 0 ] || EPHEM_RELEASE_DIRTY=1
[ "$CHECK" -eq 0 ] || [ -z "$OUT" ] || die "--check takes no DIR" 64
[ "$CHECK" -eq 1 ] || [ -n "$OUT" ] || die "usage: hack/release.sh DIR | --check (try --help)" 64
command -v go >/dev/null || die "Go is not installed (expected in /usr/local/go)" 69
COMMIT=$(git rev-parse HEAD) || die "not a git checkout" 69
if [ -n "$(git status --porcelain)" ]; then
	[ "${EPHEM_RELEASE_DIRTY:-}" = 1 ] || die "the tree has uncommitted changes (git status); commit them, or set EPHEM_RELEASE_DIRTY=1 for a test build" 65
	COMMIT=$COMMIT-dirty
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --exact-match --match 'v*' HEAD 2>/dev/null) ||
		VERSION=v0.0.0-$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S)-${COMMIT:0:12}
fi
[[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "VERSION $VERSION is not v-prefixed semver" 64
if [ "$CHECK" -eq 1 ]; then
	OUT=$(mktemp -d /tmp/ephem-release-check.XXXXXX)
	trap 'rm -rf "$OUT"' EXIT
else
	[ -e "$OUT" ] && CREATED=0 || CREATED=1
	mkdir -p "$OUT"
	[ -z "$(ls -A "$OUT")" ] || die "$OUT is not empty" 64
	OUT=$(cd "$OUT" && pwd)
	# A failed release leaves nothing: DIR is emptied, and removed if it was made here.
	trap 'rc=$?; if [ "$rc" -ne 0 ]; then find "$OUT" -mindepth 1 -delete; [ "$CREATED" -eq 0 ] || rmdir "$OUT"; fi' EXIT
fi

ARCHES=${ARCHES:-amd64 arm64}
RELEASE_URL=${RELEASE_URL:-https://github.com/ephem-dev/ephem/releases/download/$VERSION}
echo "release.sh: ephem $VERSION ($COMMIT, $DATE) for ${ARCHES// /, } into $OUT"

# build ARCH writes the static binaries for linux/ARCH into OUT/linux-ARCH
# (hack/build.sh: musl, stripped; ephem is the local engine alone, which
# hands a command line that may need Kubernetes to kubectl-ephem, the build
# with every backend: internal/cli/dispatch.go).
build() {
	local arch=$1 bin kind
	VERSION=$VERSION COMMIT=$COMMIT DATE=$DATE hack/build.sh "$OUT/linux-$arch" "$arch" || die "building linux-$arch"
	for bin in ephem kubectl-ephem; do
		kind=$(file -b "$OUT/linux-$arch/$bin")
		[[ $kind == *"statically linked"* ]] || die "linux-$arch/$bin is not statically linked: $kind"
		echo "  linux-$arch/$bin: $(du -h "$OUT/linux-$arch/$bin" | cut -f1), $kind"
	done
}

# tarball ARCH packs OUT/linux-ARCH with README, LICENSE and the man pages.
tarball() {
	local arch=$1 stage name
	stage=$(mktemp -d)
	name=ephem_${VERSION}_linux_$arch.tar.gz
	install -m 755 "$OUT/linux-$arch/ephem" "$OUT/linux-$arch/kubectl-ephem" "$stage/"
	install -m 644 README.md "$stage/"
	[ ! -f LICENSE ] || install -m 644 LICENSE "$stage/"
	install -d -m 755 "$stage/man"
	install -m 644 "$OUT"/man/*.1 "$stage/man/"
	(cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		tar --no-recursion --format=gnu --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
			-cf - -T -) | gzip -n -9 >"$OUT/$name"
	rm -rf "$stage"
	echo "  $name: $(du -h "$OUT/$name" | cut -f1)"
}

# manifest writes OUT/ephem.yaml from hack/krew and SHA256SUMS, then
# validates it with krew's own validator (hack/krewcheck, krew v0.4.3).
manifest() {
	local arch name sum
	sed "s|@VERSION@|$VERSION|" hack/krew/ephem.yaml | grep -v '^#' >"$OUT/ephem.yaml"
	for arch in $ARCHES; do
		name=ephem_${VERSION}_linux_$arch.tar.gz
		sum=$(awk -v f="$name" '$2 == f { print $1 }' "$OUT/SHA256SUMS")
		[ -n "$sum" ] || die "no checksum for $name"
		sed -e "s|@ARCH@|$arch|" -e "s|@URI@|$RELEASE_URL/$name|" -e "s|@SHA256@|$sum|" hack/krew/platform.yaml >>"$OUT/ephem.yaml"
		[ ! -f LICENSE ] || printf '    - from: LICENSE\n      to: .\n' >>"$OUT/ephem.yaml"
	done
	local out
	out=$(cd hack/krewcheck && GOFLAGS= go run sigs.k8s.io/krew/cmd/validate-krew-manifest \
		-manifest "$OUT/ephem.yaml" -skip-install 2>&1) || die "krew's validation refused $OUT/ephem.yaml: $out"
	sed 's/^/  krew: /' <<<"$out"
}

# check_dce refuses a build in which a reachable reflect MethodByName (a
# text/template executed, for one) stops the linker from dropping unused
# methods: kubectl-ephem was a fifth larger for cobra's usage template, and
# every MB of it is resident memory (internal/cli/help.go).
check_dce() {
	local tags methods
	for tags in '' ephem_local; do
		methods=$(GOFLAGS= go build -tags "$tags" -ldflags=-dumpdep -o /dev/null ./cmd/ephem 2>&1 |
			grep -o '^[^ ]* <ReflectMethod>' | sort -u) || true
		[ -z "$methods" ] || die "the build (tags '$tags') reaches reflect's MethodByName, which keeps every exported method in the binary: $methods"
	done
	echo "  dead code elimination: no reflect MethodByName reachable"
}

[ -f LICENSE ] || echo "release.sh: WARNING: there is no LICENSE file: the tarballs have none" >&2
GOFLAGS= SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH go run ./hack/man "$OUT/man" || die "writing the man pages"
check_dce
for arch in $ARCHES; do
	build "$arch"
	tarball "$arch"
done
(cd "$OUT" && sha256sum -- *.tar.gz linux-*/ephem linux-*/kubectl-ephem >SHA256SUMS)
manifest

case " $ARCHES " in
*" amd64 "*)
	if [ "$(uname -m)" = x86_64 ]; then
		got=$("$OUT/linux-amd64/ephem" version -o json) || die "linux-amd64/ephem version failed"
		grep -q "\"version\": \"$VERSION\"" <<<"$got" || die "linux-amd64/ephem version says $got, want $VERSION"
		"$OUT/linux-amd64/ephem" version | sed 's/^/  /'
		got=$("$OUT/linux-amd64/kubectl-ephem" version -o json) || die "linux-amd64/kubectl-ephem version failed"
		grep -q "\"version\": \"$VERSION\"" <<<"$got" || die "linux-amd64/kubectl-ephem version says $got, want $VERSION"
		# ephem hands Kubernetes to kubectl-ephem beside it: its help is
		# kubectl-ephem's, Kubernetes flags included.
		got=$(EPHEM_HANDED_OVER= "$OUT/linux-amd64/ephem" debug --help) || die "linux-amd64/ephem debug --help failed"
		[[ $got == *"Kubernetes flags"* ]] || die "linux-amd64/ephem debug --help lists no Kubernetes flags: not handed to kubectl-ephem"
		# Alone, it knows the local forms only, and says what to install.
		rc=0
		alone=$(mktemp -d) && cp "$OUT/linux-amd64/ephem" "$alone/"
		got=$(PATH=/usr/bin:/bin "$alone/ephem" debug pod/web -- true 2>&1) || rc=$?
		rm -rf "$alone"
		[ "$rc" -eq 64 ] && [[ $got == *"unknown scheme"*"pid:"*"kubectl-ephem"* ]] ||
			die "linux-amd64/ephem alone: debug pod/web: exit $rc, $got (want 64 naming the local forms and kubectl-ephem)"
	fi
	;;
esac
echo "release.sh: done: $OUT"
cat "$OUT/SHA256SUMS"
