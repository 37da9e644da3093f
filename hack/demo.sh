#!/usr/bin/env bash
# hack/demo.sh — ephem's main job, end to end, on a fresh Debian machine (as root).
#
# 1. Installs the Debian packages it needs (only those missing).
# 2. Builds ephem and the test images (busybox as the tool image, from
#    Debian's busybox-static; nothing is downloaded but Debian packages and
#    Go modules) into OCI layouts: no registry and no daemon are needed.
# 3. Starts a target: the shell-less "distroless" HTTP server alone in a root
#    filesystem, as PID 1 of its own pid, net, mount, uts and ipc namespaces.
# 4. Runs ephem against it, printing each command first:
#    - wget localhost:80 from a debug container in the target's namespaces;
#    - the namespaces of the target and of a debug container, side by side;
#    - the target's files, seen through /proc/1/root.
# 5. Stops the target (also on failure or Ctrl-C).
#
# Exits non-zero as soon as a step fails. Safe to run again.
# Environment: EPHEM_DEMO_DIR (default /var/tmp/ephem-demo) holds the
# binary, images, target root and ephem's image cache.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${EPHEM_DEMO_DIR:-/var/tmp/ephem-demo}
EPHEM=$WORK/bin/ephem
export EPHEM_CACHE_DIR=$WORK/cache
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "==> $*"; }
die() { echo "demo.sh: error: $*" >&2; exit 1; }
# show prints a command, then runs it.
show() {
	printf '\n$ %s\n' "$*"
	"$@"
}
# capture is show that also keeps the command's output in $OUT.
capture() {
	printf '\n$ %s\n' "$*"
	"$@" | tee "$WORK/last.out"
	OUT=$(cat "$WORK/last.out")
}

[ "$(id -u)" -eq 0 ] || die "run as root: $0 needs to join namespaces and install packages"
cd "$ROOT"

step "Installing missing Debian packages"
# command -> package: busybox (the tool image), unshare/nsenter/setsid, ip.
declare -A need=([busybox]=busybox-static [unshare]=util-linux
	[nsenter]=util-linux [setsid]=util-linux [ip]=iproute2 [chroot]=coreutils)
missing=()
for f in "${!need[@]}"; do
	command -v "$f" >/dev/null || missing+=("${need[$f]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "all present"
fi
command -v go >/dev/null || die "Go is not installed: install Go (>= the version in go.mod) in /usr/local/go"
echo "go: $(go version)"

step "Building ephem"
mkdir -p "$WORK/bin"
show go build -o "$EPHEM" ./cmd/ephem
show "$EPHEM" version

step "Building the test images into OCI layouts (cached; first run takes a minute)"
# One layout per image, so that oci:DIR names it without a tag.
show go run ./hack/images layout -dir "$WORK/images/busybox" busybox
show go run ./hack/images layout -dir "$WORK/images/distroless" distroless
TOOL=oci:$WORK/images/busybox

step "Preparing the target's root: the distroless server alone, no shell"
# The distroless image is exactly this static binary as /server.
TARGET_ROOT=$WORK/target-root
rm -rf "$TARGET_ROOT"
mkdir -p "$TARGET_ROOT"
show env CGO_ENABLED=0 go build -trimpath -o "$TARGET_ROOT/server" ./test/fixtures/pyserv
show ls -la "$TARGET_ROOT"

target_pgid=
cleanup() {
	local rc=$?
	if [ -n "$target_pgid" ]; then
		step "Cleaning up: stopping the target (process group $target_pgid)"
		kill -KILL -- "-$target_pgid" 2>/dev/null || true
		wait "$target_pgid" 2>/dev/null || true
	fi
	if [ "$rc" -ne 0 ]; then
		echo "demo.sh: FAILED (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting the target in its own namespaces"
show_cmd="unshare --fork --pid --mount-proc --net --uts --ipc sh -c 'ip link set lo up && hostname demo-target && exec chroot $TARGET_ROOT /server -addr 127.0.0.1:80'"
printf '\n$ %s &\n' "$show_cmd"
setsid unshare --fork --pid --mount-proc --net --uts --ipc \
	sh -c "ip link set lo up && hostname demo-target && exec chroot '$TARGET_ROOT' /server -addr 127.0.0.1:80" \
	</dev/null >"$WORK/target.log" 2>&1 &
target_pgid=$!
# The server is unshare's only child: PID 1 of the new pid namespace.
PID=
for _ in $(seq 100); do
	PID=$(tr -d ' ' <"/proc/$target_pgid/task/$target_pgid/children" 2>/dev/null) || true
	if [ -n "$PID" ] && [ "$(readlink "/proc/$PID/exe" 2>/dev/null)" = "$TARGET_ROOT/server" ] &&
		nsenter -t "$PID" -n busybox wget -qO- http://127.0.0.1:80/ >/dev/null 2>&1; then
		break
	fi
	PID=
	sleep 0.1
done
[ -n "$PID" ] || { cat "$WORK/target.log" >&2; die "the target did not start answering on its loopback"; }
echo "target: pid $PID, answering on 127.0.0.1:80 inside its own network namespace"
echo "the target has no shell:"
show ls /proc/"$PID"/root/
if nsenter -t "$PID" -m -r /bin/sh -c true 2>/dev/null; then die "the target unexpectedly has a shell"; fi
echo "(nsenter ... /bin/sh into it fails: there is no /bin/sh)"
echo "and its port is not reachable from the host:"
if busybox wget -qO- http://127.0.0.1:80/ 2>/dev/null | grep -q 'OK - GET'; then
	echo "(something on the host answers on 127.0.0.1:80 too; that is not the target)"
else
	echo "(wget 127.0.0.1:80 from the host gets nothing)"
fi

step "1. Reach the target's server from a debug container in its namespaces"
capture "$EPHEM" debug "pid:$PID" --image "$TOOL" -- wget -qO- localhost:80
grep -q 'OK - GET: Request completed' <<<"$OUT" || die "expected 'OK - GET: Request completed' from the target"
capture "$EPHEM" debug -q "pid:$PID" --image "$TOOL" -- hostname
[ "$OUT" = demo-target ] || die "expected the target's hostname, demo-target"

step "2. Namespaces: the target's and the debug container's"
show ls -l /proc/"$PID"/ns
capture "$EPHEM" debug -q "pid:$PID" --image "$TOOL" -- ls -l /proc/self/ns
dbg=$OUT
echo
printf '%-8s %-28s %-28s %s\n' NS TARGET "DEBUG CONTAINER" RESULT
fail=0
for ns in net ipc uts pid mnt; do
	t=$(readlink "/proc/$PID/ns/$ns")
	d=$(awk -v ns="$ns" 'NF >= 3 && $(NF-2) == ns { print $NF }' <<<"$dbg")
	if [ "$ns" = mnt ]; then want=different; else want=same; fi
	if [ "$t" = "$d" ]; then got=same; else got=different; fi
	verdict=ok
	[ "$got" = "$want" ] || { verdict="UNEXPECTED (want $want)"; fail=1; }
	printf '%-8s %-28s %-28s %s %s\n' "$ns" "$t" "${d:-?}" "$got" "$verdict"
done
[ "$fail" -eq 0 ] || die "the debug container's namespaces are not as expected"

step "3. The target's files, through /proc/1/root (PID 1 is the target's server)"
capture "$EPHEM" debug -q "pid:$PID" --image "$TOOL" -- ls -l /proc/1/root/
grep -q 'server' <<<"$OUT" || die "expected the target's /server under /proc/1/root"
show "$EPHEM" debug -q "pid:$PID" --image "$TOOL" -- ps -o pid,comm

step "Done: ephem reached a shell-less target's network, processes and files"
echo "The binary, images and ephem's image cache stay in $WORK (about 40 MB), so a second run is"
echo "faster; remove them with: rm -rf $WORK"
