# lib.sh: settings and helpers shared by up.sh and down.sh. Sourced, not run.
# shellcheck shell=bash
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2034 # variables are used by the scripts that source this

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$here/versions.env"

# Everything the cluster writes lives under D.
D="${EPHEM_CLUSTER_DIR:-/var/lib/ephem-cluster}"
NODE_NAME="${EPHEM_NODE_NAME:-ephem-node}"
BRIDGE="${EPHEM_BRIDGE:-ephem0}"
POD_CIDR="${EPHEM_POD_CIDR:-10.244.0.0/24}"
NODE_IP="${POD_CIDR%.*}.1"
SERVICE_CIDR="${EPHEM_SERVICE_CIDR:-10.96.0.0/24}"
SERVICE_IP="${SERVICE_CIDR%.*}.1"
APISERVER_PORT="${EPHEM_APISERVER_PORT:-16443}"
ETCD_PORT="${EPHEM_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${EPHEM_ETCD_PEER_PORT:-23800}"
REGISTRY_PORT="${EPHEM_REGISTRY_PORT:-5050}"
REGISTRY="127.0.0.1:$REGISTRY_PORT"
CNI_NETWORK=ephem-pods
CGROUP_ROOT=ephem-cluster
CHAIN_FWD=EPHEM-CLUSTER-FWD
CHAIN_IN=EPHEM-CLUSTER-IN
# Sysctls the kubelet or the bridge may change; saved by up, restored by down.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward)
# Host paths the kubelet, containerd and CNI hard-code. down.sh removes our
# entries in them, and the (then empty) directories that up.sh found absent.
HOST_PATHS=(/var/lib/kubelet /var/lib/cni /run/containerd /var/log/containers /var/log/pods /usr/libexec/kubernetes)
# Components in start order; down stops them in reverse.
COMPONENTS=(registry etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)

# Locks, in /run/lock so that they outlive the state directory: up.sh and
# down.sh hold the state lock exclusively; test processes (test/e2e/kube) hold
# the users lock shared while they use the cluster, and down.sh waits for them
# (taking it exclusively) unless EPHEM_CLUSTER_FORCE=1. Lock order: users,
# then state.
LOCK_BASE="/run/lock/ephem-cluster-$(printf '%s' "$D" | sha256sum | cut -c1-12)"

# lock_state takes the state lock on fd 8, waiting for a running up or down.
lock_state() {
	mkdir -p /run/lock
	exec 8>"$LOCK_BASE.lock"
	if ! flock -n 8; then
		log "waiting for another up.sh or down.sh on $D to finish"
		flock -w "${EPHEM_CLUSTER_LOCK_WAIT:-1800}" 8 || die "timed out waiting for $LOCK_BASE.lock"
	fi
}

log() { printf '%s %s: %s\n' "$(date +%H:%M:%S)" "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_root() { [[ $EUID -eq 0 ]] || die "must run as root (it starts a kubelet and containerd)"; }

# pid_of NAME prints the pid of a running component started by up.sh.
pid_of() {
	local f="$D/run/$1.pid" pid
	[[ -f $f ]] || return 1
	pid="$(<"$f")"
	[[ -n $pid && -d /proc/$pid ]] || return 1
	# Guard against pid reuse: the process must refer to our state dir.
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$D/" || return 1
	echo "$pid"
}

# started_alive NAME: whether the component this script just started is
# still running. Not pid_of: for a moment after start_daemon, the process is
# still the forked shell, whose command line does not name $D yet (pid_of
# would call it gone: "kube-apiserver exited" with an empty log); and a pid
# this script started seconds ago has not been reused.
started_alive() {
	local f="$D/run/$1.pid" state
	[[ -f $f ]] || return 1
	state="$(grep -s '^State:' "/proc/$(<"$f")/status")" || return 1
	[[ $state != *zombie* ]]
}

# start_daemon NAME CMD... runs CMD detached, logging to $D/logs/NAME.log.
start_daemon() {
	local name="$1"
	shift
	mkdir -p "$D/logs" "$D/run"
	# Not holding our lock descriptors: a daemon must not keep the locks.
	setsid "$@" </dev/null >>"$D/logs/$name.log" 2>&1 7>&- 8>&- &
	echo $! >"$D/run/$name.pid"
	log "started $name (pid $!)"
}

# wait_for DESC SECONDS CMD... retries CMD every 0.2 s until it succeeds.
wait_for() {
	wait_until "" "$@"
}

# wait_component NAME SECONDS CMD... waits like wait_for, but fails at once
# if the component NAME (started with start_daemon) exits.
wait_component() {
	wait_until "$1" "$@"
}

# wait_until COMPONENT DESC SECONDS CMD...: wait_for, and with a COMPONENT
# (not empty) fail at once if it exits.
wait_until() {
	local comp="$1" desc="$2" timeout="$3" start=$SECONDS
	shift 3
	until "$@" >/dev/null 2>&1; do
		if [[ -n "$comp" ]] && ! started_alive "$comp"; then
			log "$comp exited; see $D/logs/$comp.log"
			return 1
		fi
		if ((SECONDS - start >= timeout)); then
			log "timed out after ${timeout}s waiting for $desc"
			return 1
		fi
		sleep 0.2
	done
}

# stop_pid NAME PID [TIMEOUT]: SIGTERM, then SIGKILL after TIMEOUT seconds.
stop_pid() {
	local name="$1" pid="$2" timeout="${3:-10}" i
	kill -TERM "$pid" 2>/dev/null || { log "stopped $name (pid $pid)"; return 0; }
	for ((i = 0; i < timeout * 10; i++)); do
		[[ -d /proc/$pid ]] || { log "stopped $name (pid $pid)"; return 0; }
		sleep 0.1
	done
	log "killing $name (pid $pid) after ${timeout}s"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do [[ -d /proc/$pid ]] || return 0; sleep 0.1; done
}

# Executables up.sh runs; a process is ours if it runs one of them and its
# command line names our state directory.
OUR_EXES=" etcd containerd containerd-shim-runc-v2 kube-apiserver kube-controller-manager kube-scheduler kubelet docker-registry ephem-images "

# our_pids prints the pids of our processes (components, containerd shims,
# the registry), whether or not their pid files survive.
our_pids() {
	local p cmd exe
	for p in /proc/[0-9]*; do
		exe="$(readlink "$p/exe" 2>/dev/null)" || continue
		[[ $OUR_EXES == *" ${exe##*/} "* ]] || continue
		cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
		[[ $cmd == *"$D/"* ]] && echo "${p#/proc/}"
	done
	return 0
}

# cgroup_pids prints the pids in the cluster's cgroups (pods' processes).
cgroup_pids() {
	local f
	# Pods' cgroups vanish while find walks them (a cluster being torn
	# down right after many pods ran): that is not a failure, and under
	# set -e with pipefail it must not end down.sh half-way.
	for f in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
		[[ -d $f ]] || continue
		find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null || true
	done | sort -u
	return 0
}

# our_mounts prints mount points under $D or our netns, deepest first.
our_mounts() {
	awk -v d="$D/" '{ gsub(/\\040/, " ", $5); if (index($5, d) == 1) print $5 }' /proc/self/mountinfo | sort -ru
}

kubectl_() { "$D/bin/kubectl" --kubeconfig "$D/kubeconfig" "$@"; }
