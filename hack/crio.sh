#!/usr/bin/env bash
# crio.sh: a standalone CRI-O for testing cri:// targets.
#
#   hack/crio.sh build        build crio, pinns and crictl into $CACHE (once per version)
#   hack/crio.sh start DIR    run CRI-O with everything under DIR; prints
#                             CONTAINER_RUNTIME_ENDPOINT=unix://DIR/crio.sock
#   hack/crio.sh stop DIR     stop it: pods, processes, mounts; DIR removed
#
# CRI-O is built from the Go module proxy at a pinned version, the way
# hack/cluster builds Kubernetes: the module's source is copied out of the
# module cache and built as the main module (so its own go.mod applies),
# with build tags that need none of gpgme, btrfs, devicemapper, libseccomp
# or libsubid (containers_image_openpgp, exclude_graphdriver_*, no seccomp
# tag: CRI-O then runs containers without a seccomp filter). pinns is
# CRI-O's small static C helper (gcc). crictl is sigs.k8s.io/cri-tools.
# At run time it uses Debian's conmon, runc and CNI plugins (loopback
# only: pods get a network namespace with lo and nothing else), the
# cgroupfs manager, and the test registry's pause image.
set -euo pipefail

CRIO_VERSION="${CRIO_VERSION:-v1.34.0}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
CACHE="${EPHEM_CRIO_CACHE:-/var/cache/ephem/crio}"
BIN="$CACHE/$CRIO_VERSION"
CRIO_TAGS="containers_image_openpgp containers_image_ostree_stub exclude_graphdriver_btrfs exclude_graphdriver_devicemapper btrfs_noversion"

die() {
	echo "crio.sh: $*" >&2
	exit 1
}

build() {
	if [[ -x $BIN/crio && -x $BIN/pinns && -x $BIN/crictl ]]; then
		return 0
	fi
	command -v go >/dev/null || die "go is not installed"
	command -v gcc >/dev/null || die "gcc is not installed (pinns is C)"
	mkdir -p "$BIN"
	local dir src
	dir=$(cd /tmp && go mod download -json "github.com/cri-o/cri-o@$CRIO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || die "downloading github.com/cri-o/cri-o@$CRIO_VERSION from the module proxy failed"
	src="$CACHE/src-$CRIO_VERSION"
	rm -rf "$src"
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	(
		cd "$src"
		CGO_ENABLED=1 go build -trimpath -tags "$CRIO_TAGS" \
			-ldflags "-s -w -X github.com/cri-o/cri-o/internal/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
			-o "$BIN/crio.new" ./cmd/crio
		make -C pinns CFLAGS="-std=c99 -Os -Wall -Wextra -static" >/dev/null
	)
	install -m 755 "$src/bin/pinns" "$BIN/pinns"
	(cd /tmp && GOBIN="$BIN" go install -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION")
	mv "$BIN/crio.new" "$BIN/crio"
	rm -rf "$src"
}

# EPHEM_REGISTRY names the (plain HTTP) registry CRI-O pulls from; its
# pause image is EPHEM_CRIO_PAUSE_IMAGE, else REGISTRY/ephem/pause:test. Even
# without an infra container CRI-O pulls it (the sandbox's storage).

# registry is the test registry (host:port) whose pause image CRI-O uses.
registry() {
	local env="${EPHEM_CLUSTER_DIR:-/var/lib/ephem-cluster}/images.env"
	if [[ -n ${EPHEM_REGISTRY:-} ]]; then
		echo "$EPHEM_REGISTRY"
	elif [[ -r $env ]]; then
		sed -n 's|^pause=\([^/]*\)/.*|\1|p' "$env"
	else
		echo 127.0.0.1:5050
	fi
}

write_config() {
	local d=$1 reg
	reg=$(registry)
	mkdir -p "$d"/{root,runroot,logs,exits,attach,ns,runc,cni/net.d,conf}
	# Loopback only: each pod gets a network namespace with lo and nothing
	# else, so nothing reaches or leaves the host.
	cat >"$d/cni/net.d/10-loopback.conflist" <<EOF2
{"cniVersion": "1.0.0", "name": "crio-loopback", "plugins": [{"type": "loopback"}]}
EOF2
	cat >"$d/conf/policy.json" <<EOF2
{"default": [{"type": "insecureAcceptAnything"}]}
EOF2
	cat >"$d/conf/registries.conf" <<EOF2
[[registry]]
location = "$reg"
insecure = true
EOF2
	cat >"$d/conf/storage.conf" <<EOF2
[storage]
driver = "overlay"
runroot = "$d/runroot"
graphroot = "$d/root"
EOF2
	cat >"$d/crio.conf" <<EOF2
[crio]
root = "$d/root"
runroot = "$d/runroot"
storage_driver = "overlay"
log_dir = "$d/logs"
version_file = "$d/runroot/version"
version_file_persist = "$d/root/version"
clean_shutdown_file = "$d/root/clean.shutdown"

[crio.api]
listen = "$d/crio.sock"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
conmon_cgroup = "pod"
namespaces_dir = "$d/ns"
pinns_path = "$BIN/pinns"
container_exits_dir = "$d/exits"
container_attach_socket_dir = "$d/attach"
selinux = false
# Root in this VM lacks CAP_SYS_RESOURCE: runc cannot set the -998 oom score
# CRI-O gives an infra (pause) container. Without one (pods that do not
# share a PID namespace) none is needed; the network namespace is pinned.
drop_infra_ctr = true
hooks_dir = []

[crio.runtime.runtimes.runc]
runtime_path = "$(command -v runc)"
runtime_root = "$d/runc"
monitor_path = "$(command -v conmon)"
monitor_cgroup = "pod"

[crio.image]
pause_image = "${EPHEM_CRIO_PAUSE_IMAGE:-$reg/ephem/pause:test}"
insecure_registries = ["$reg"]
signature_policy = "$d/conf/policy.json"

[crio.network]
network_dir = "$d/cni/net.d"
plugin_dirs = ["/usr/lib/cni"]

[crio.nri]
enable_nri = false

[crio.metrics]
enable_metrics = false
EOF2
}

start() {
	local d=$1
	build
	for cmd in conmon runc; do
		command -v "$cmd" >/dev/null || die "$cmd is not installed (apt-get install $cmd)"
	done
	[[ -x /usr/lib/cni/loopback ]] || die "the CNI loopback plugin is not installed (apt-get install containernetworking-plugins)"
	write_config "$d"
	CONTAINERS_REGISTRIES_CONF="$d/conf/registries.conf" CONTAINERS_STORAGE_CONF="$d/conf/storage.conf" \
		setsid "$BIN/crio" --config "$d/crio.conf" --config-dir "" --log-level info </dev/null >"$d/crio.log" 2>&1 &
	echo $! >"$d/crio.pid"
	local i
	for ((i = 0; i < 300; i++)); do
		if "$BIN/crictl" --runtime-endpoint "unix://$d/crio.sock" --timeout 2s version >/dev/null 2>&1; then
			echo "CONTAINER_RUNTIME_ENDPOINT=unix://$d/crio.sock"
			echo "CRICTL=$BIN/crictl"
			echo "CGROUP_PARENT=$(cgroup_parent "$d")"
			return 0
		fi
		if ! kill -0 "$(cat "$d/crio.pid")" 2>/dev/null; then
			tail -20 "$d/crio.log" >&2
			die "crio exited at start (log: $d/crio.log)"
		fi
		sleep 0.1
	done
	tail -20 "$d/crio.log" >&2
	stop "$d"
	die "crio did not answer on $d/crio.sock within 30s"
}

# cgroup_parent is the cgroup (cgroupfs) the pods of the CRI-O in dir
# should name as their linux.cgroup_parent: stop removes it.
cgroup_parent() { echo "/ephem-crio-$(basename "$1")"; }

# pids_under prints the processes whose command line mentions dir: CRI-O,
# its conmons and their containers' runc.
pids_under() {
	local dir=$1 p
	for p in /proc/[0-9]*; do
		if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$dir/"; then
			echo "${p#/proc/}"
		fi
	done
}

stop() {
	local d=$1 pid i
	[[ -d $d ]] || return 0
	if [[ -S $d/crio.sock ]]; then
		local crictl=("$BIN/crictl" --runtime-endpoint "unix://$d/crio.sock" --timeout 10s) ids
		# No grace period: a PID 1 that ignores SIGTERM would hold rmp for 10s.
		ids=$("${crictl[@]}" ps -q 2>/dev/null) || true
		# shellcheck disable=SC2086 # one argument per ID
		[[ -z $ids ]] || "${crictl[@]}" stop -t 0 $ids >/dev/null 2>&1 || true
		"${crictl[@]}" rmp -fa >/dev/null 2>&1 || true
	fi
	if [[ -f $d/crio.pid ]]; then
		pid=$(cat "$d/crio.pid")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	# What rmp left (CRI-O was killed): the containers runc still knows,
	# then their conmons.
	if [[ -d $d/runc ]]; then
		for id in $(runc --root "$d/runc" list -q 2>/dev/null); do
			runc --root "$d/runc" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	for pid in $(pids_under "$d"); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	# Mounts under d, the deepest first: overlay rootfs, shm, pinned namespaces.
	local m
	for ((i = 0; i < 5; i++)); do
		m=$(awk -v d="$d/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
		[[ -z $m ]] && break
		for mp in $m; do umount -l "$mp" 2>/dev/null || true; done
	done
	# The pods' cgroups (CRI-O removes its containers' own, not the parent).
	local cg
	cg=$(cgroup_parent "$d")
	for ((i = 0; i < 20; i++)); do
		m=$(find /sys/fs/cgroup/ -depth -type d -path "*$cg*" 2>/dev/null)
		[[ -z $m ]] && break
		for mp in $m; do rmdir "$mp" 2>/dev/null || true; done
		sleep 0.1
	done
	rm -rf "$d"
}

case "${1:-}" in
build) build ;;
start) [[ -n ${2:-} ]] || die "usage: $0 start DIR"; start "$(realpath -m "$2")" ;;
stop) [[ -n ${2:-} ]] || die "usage: $0 stop DIR"; stop "$(realpath -m "$2")" ;;
*) die "usage: $0 build|start DIR|stop DIR" ;;
esac
