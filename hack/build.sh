#!/usr/bin/env bash
# hack/build.sh — ephem's two binaries as released: static, stripped, linked
# against musl, for linux/ARCH. hack/release.sh, hack/bench, hack/benchkube,
# hack/soak and the end-to-end test of the release's build (test/e2e/local)
# use it.
#
#   hack/build.sh DIR [ARCH]   writes DIR/ephem and DIR/kubectl-ephem
#                              (ARCH amd64 or arm64; default: the host's)
#
# DIR/ephem is the local engine (tag ephem_local), which hands a command line
# that may need Kubernetes to DIR/kubectl-ephem, the build with every backend.
#
# Why musl: glibc's static start-up asks the CPU for its cache sizes with
# cpuid, dozens of times, and under a hypervisor every cpuid is a VM exit:
# on the 2-vCPU test VM an empty cgo program starts in 2.9 ms with glibc,
# 2.0 ms with musl, 1.8 ms without cgo, and a local session starts the
# binary three times (docs/benchmarks.md). Debian's musl-dev for ARCH is
# fetched once with apt into /var/cache/ephem/musl/ARCH (a private package
# list: nothing on the host changes), with the host's gcc (amd64) or
# Debian's cross compiler (arm64) and their kernel headers.
#
# Environment: VERSION, COMMIT, DATE are stamped into the binaries
# (internal/buildinfo); default: a dev build's. EPHEM_CACHE_ROOT moves
# /var/cache/ephem.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH=$PATH:/usr/local/go/bin
PKG=github.com/ephem-dev/ephem/internal/buildinfo
CACHE=${EPHEM_CACHE_ROOT:-/var/cache/ephem}/musl

die() {
	echo "build.sh: $1" >&2
	exit "${2:-1}"
}

case ${1:-} in
-h | --help)
	sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
"") die "usage: hack/build.sh DIR [ARCH] (try --help)" 64 ;;
esac
command -v go >/dev/null || die "Go is not installed (expected in /usr/local/go)" 69
OUT=$1
ARCH=${2:-$(go env GOHOSTARCH)}

case $ARCH in
amd64) GCC=gcc TRIPLE=x86_64-linux-musl KINC=(/usr/include/linux /usr/include/asm-generic /usr/include/x86_64-linux-gnu/asm) ;;
arm64) GCC=aarch64-linux-gnu-gcc TRIPLE=aarch64-linux-musl KINC=(/usr/aarch64-linux-gnu/include/linux /usr/aarch64-linux-gnu/include/asm-generic /usr/aarch64-linux-gnu/include/asm) ;;
*) die "unsupported architecture $ARCH (amd64 or arm64)" 64 ;;
esac
command -v "$GCC" >/dev/null || die "$GCC is missing (apt install gcc linux-libc-dev gcc-aarch64-linux-gnu linux-libc-dev-arm64-cross)" 69
for d in "${KINC[@]}"; do
	[ -d "$d" ] || die "the kernel headers $d are missing (apt install linux-libc-dev linux-libc-dev-arm64-cross)" 69
done

# musl_toolchain prepares CACHE/ARCH once: musl-dev's files, a gcc specs
# file pointing at them, and the kernel headers musl does not carry.
TMP=
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT
musl_toolchain() {
	local dir=$CACHE/$ARCH deb d
	[ -f "$dir/musl-gcc.specs" ] && return
	command -v apt-get >/dev/null || die "apt-get is missing: musl-dev comes from Debian's archive" 69
	mkdir -p "$CACHE"
	TMP=$(mktemp -d "$CACHE/.prepare-$ARCH-XXXXXX")
	chmod 755 "$TMP"
	mkdir -p "$TMP/lists/partial" "$TMP/cache/archives/partial" "$TMP/debs" "$TMP/root/kinc"
	local apt=(-qq -o "APT::Architecture=$ARCH" -o "APT::Architectures::=$ARCH"
		-o "Dir::State::Lists=$TMP/lists" -o "Dir::Cache=$TMP/cache" -o "Dir::State::status=/dev/null" -o APT::Sandbox::User=root)
	echo "build.sh: fetching Debian's musl-dev for $ARCH into $dir" >&2
	apt-get "${apt[@]}" update >&2 || die "apt-get update (for $ARCH's package list) failed"
	(cd "$TMP/debs" && apt-get "${apt[@]}" download "musl:$ARCH" "musl-dev:$ARCH" >&2) || die "apt-get download musl-dev:$ARCH failed"
	for deb in "$TMP"/debs/*.deb; do
		[ -f "$deb" ] || die "apt-get download musl-dev:$ARCH fetched nothing"
		dpkg-deb -x "$deb" "$TMP/root"
	done
	[ -f "$TMP/root/usr/lib/$TRIPLE/libc.a" ] || die "musl-dev:$ARCH has no usr/lib/$TRIPLE/libc.a"
	for d in "${KINC[@]}"; do
		ln -s "$d" "$TMP/root/kinc/$(basename "$d")"
	done
	# Debian's specs, its absolute paths moved under dir.
	sed -e "s|/usr/lib/$TRIPLE|$dir/root/usr/lib/$TRIPLE|g" -e "s|/usr/include/$TRIPLE|$dir/root/usr/include/$TRIPLE|g" \
		"$TMP/root/usr/lib/$TRIPLE/musl-gcc.specs" >"$TMP/musl-gcc.specs"
	rm -rf "$TMP/lists" "$TMP/cache" "$TMP/debs"
	# The directory appears whole or not at all; a build that prepared it
	# at the same time wins.
	if mv -T "$TMP" "$dir" 2>/dev/null; then
		TMP=
	fi
	[ -f "$dir/musl-gcc.specs" ] || die "could not move the musl toolchain into $dir"
}
musl_toolchain
SPECS=$CACHE/$ARCH/musl-gcc.specs

mkdir -p "$OUT"
X="-X $PKG.version=${VERSION:-dev} -X $PKG.commit=${COMMIT:-} -X $PKG.date=${DATE:-}"
# netgo and osusergo: no NSS, which a static binary cannot load; static:
# no dlopen of libpcap (pkg/pcap compiles capture filters itself).
for bin in ephem kubectl-ephem; do
	tags='static netgo osusergo'
	[ "$bin" = kubectl-ephem ] || tags="$tags ephem_local"
	CGO_ENABLED=1 GOOS=linux GOARCH=$ARCH CC="$GCC -specs $SPECS" CGO_CFLAGS="-O2 -g0 -idirafter $CACHE/$ARCH/root/kinc" GOFLAGS= \
		go build -trimpath -buildvcs=false -tags "$tags" \
		-ldflags "-buildid= -s -w -linkmode external -extldflags '-static -Wl,--build-id=none' $X" \
		-o "$OUT/$bin" ./cmd/ephem
done
