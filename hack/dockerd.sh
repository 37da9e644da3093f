#!/usr/bin/env bash
# hack/dockerd.sh start|stop|status|env — a private Docker daemon for ephem's tests.
#
# start   Starts Debian's dockerd (installing docker.io with apt-get when it is
#         missing) with no bridge and no iptables rules, its own data root,
#         exec root, pid file and socket, and waits until `docker version`
#         answers. Prints DOCKER_HOST=unix://... as its last line. Running it
#         again while that daemon is up only prints the line again.
# stop    Removes every container of that daemon, stops it (only the process
#         named in its pid file), unmounts whatever is left mounted under
#         its directories and removes them: nothing of it is left.
# status  Exits 0 when the daemon answers, 1 otherwise.
# env     Prints DOCKER_HOST=... and DOCKER_API_VERSION=... (no daemon needed).
#
# Containers run on this daemon must use `--network none`: it has no bridge.
# Use Debian's client, /usr/bin/docker (20.10), with DOCKER_HOST set; a newer
# client elsewhere on PATH must be given DOCKER_API_VERSION=1.41.
#
# Environment: EPHEM_TEST_DOCKER_DIR (default /var/lib/ephem-test/docker) holds
# the data root, configuration and log; EPHEM_TEST_DOCKER_RUN (default
# /run/ephem-test) holds the socket, pid file and exec root.
set -euo pipefail

STATE_DIR=$(realpath -m "${EPHEM_TEST_DOCKER_DIR:-/var/lib/ephem-test/docker}")
RUN_DIR=$(realpath -m "${EPHEM_TEST_DOCKER_RUN:-/run/ephem-test}")
DATA_ROOT=$STATE_DIR/data
CONFIG=$STATE_DIR/daemon.json
LOG=$STATE_DIR/dockerd.log
EXEC_ROOT=$RUN_DIR/docker
PIDFILE=$RUN_DIR/dockerd.pid
SOCK=$RUN_DIR/docker.sock
DOCKERD=/usr/sbin/dockerd
DOCKER=/usr/bin/docker
API_VERSION=1.41
START_TIMEOUT=${EPHEM_TEST_DOCKER_TIMEOUT:-60}

export DOCKER_HOST=unix://$SOCK
export DOCKER_API_VERSION=$API_VERSION

log() { echo "dockerd.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (from a root shell: $0 $*)"
}

# install_docker installs Debian's docker.io when dockerd or the client is missing.
install_docker() {
	if [ -x "$DOCKERD" ] && [ -x "$DOCKER" ]; then
		return
	fi
	log "installing Debian package docker.io"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends docker.io >&2; then
		apt-get update >&2
		apt-get install -y --no-install-recommends docker.io >&2
	fi
	[ -x "$DOCKERD" ] || die "$DOCKERD still missing after installing docker.io"
}

# our_pid prints the pid from the pid file when that process is a dockerd
# started with our pid file, and fails otherwise.
our_pid() {
	local pid
	[ -f "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--pidfile $PIDFILE" || return 1
	echo "$pid"
}

answers() {
	timeout 10 "$DOCKER" version >/dev/null 2>&1
}

print_env() {
	echo "DOCKER_API_VERSION=$API_VERSION"
	echo "DOCKER_HOST=unix://$SOCK"
}

# unmount_under unmounts every mount point below the given directories, deepest first.
unmount_under() {
	local dir m
	for dir in "$@"; do
		[ -d "$dir" ] || continue
		dir=$(realpath "$dir")
		# findmnt escapes blanks as \x20; our paths have none.
		findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" || log "warning: could not unmount $m"
		done
	done
}

start() {
	need_root start
	if our_pid >/dev/null && answers; then
		log "already running (pid $(our_pid)), socket $SOCK"
		print_env
		return
	fi
	if pid=$(our_pid); then
		log "pid $pid holds $PIDFILE but does not answer; stopping it first"
		stop
	fi
	install_docker
	mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$RUN_DIR"
	# A fresh daemon: forget that an earlier test binary started one (see
	# internal/e2eutil, which stops only daemons that tests started).
	rm -f "$PIDFILE" "$SOCK" "$RUN_DIR/dockerd.started-by-tests"
	# Our own (empty) configuration, so /etc/docker/daemon.json cannot interfere.
	echo '{}' >"$CONFIG"
	log "starting $DOCKERD (log: $LOG)"
	# setsid: the daemon outlives this script and is not in its process group;
	# cd / and no inherited descriptors: it holds none of the caller's
	# directories or lock files.
	(
		cd /
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ] 2>/dev/null; then
				eval "exec $fd>&-" 2>/dev/null || true
			fi
		done
		exec setsid "$DOCKERD" \
		--config-file "$CONFIG" \
		--data-root "$DATA_ROOT" \
		--exec-root "$EXEC_ROOT" \
		--pidfile "$PIDFILE" \
		--host "unix://$SOCK" \
		--containerd-namespace ephem-test \
		--containerd-plugins-namespace ephem-test-plugins \
		--bridge=none --iptables=false --ip6tables=false --ip-masq=false \
		--userland-proxy=false \
		--storage-driver overlay2 \
		</dev/null >>"$LOG" 2>&1
	) &
	local started=$! deadline=$((SECONDS + START_TIMEOUT))
	until answers; do
		if ! kill -0 "$started" 2>/dev/null; then
			tail -n 30 "$LOG" >&2 || true
			die "dockerd exited during start-up; see $LOG"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 30 "$LOG" >&2 || true
			kill "$started" 2>/dev/null || true
			die "dockerd did not answer within ${START_TIMEOUT}s; see $LOG"
		fi
		sleep 0.2
	done
	log "running (pid $(our_pid || echo "$started")), $("$DOCKER" version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"
	print_env
}

stop() {
	need_root stop
	local pid
	if pid=$(our_pid); then
		if answers; then
			local ids
			ids=$("$DOCKER" ps -aq 2>/dev/null || true)
			if [ -n "$ids" ]; then
				log "removing containers: $(echo "$ids" | tr '\n' ' ')"
				# shellcheck disable=SC2086 # one id per word
				timeout 60 "$DOCKER" rm -f -v $ids >/dev/null || log "warning: could not remove every container"
			fi
		fi
		log "stopping dockerd (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 30))
		while [ -d "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do
			sleep 0.2
		done
		if [ -d "/proc/$pid" ]; then
			log "dockerd did not stop within 30s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
		fi
	else
		log "not running"
	fi
	# The containerd dockerd supervises leaves with it; kill one left behind by a SIGKILL.
	local cpid
	if [ -f "$EXEC_ROOT/containerd/containerd.pid" ]; then
		cpid=$(cat "$EXEC_ROOT/containerd/containerd.pid" 2>/dev/null || true)
		if [[ $cpid =~ ^[0-9]+$ ]] && [ -r "/proc/$cpid/cmdline" ] &&
			tr '\0' ' ' <"/proc/$cpid/cmdline" | grep -q -- "$EXEC_ROOT"; then
			log "stopping the containerd left behind (pid $cpid)"
			kill -TERM "$cpid" 2>/dev/null || true
		fi
	fi
	unmount_under "$EXEC_ROOT" "$DATA_ROOT"
	rm -f "$PIDFILE" "$SOCK" "$RUN_DIR/dockerd.started-by-tests"
	# Leave nothing behind: the daemon's state (images the tests loaded are
	# loaded again, in seconds), then the directories if nothing else is in
	# them. --one-file-system: never into a mount unmount_under missed.
	rm -rf --one-file-system "$DATA_ROOT" "$EXEC_ROOT" "$CONFIG" "$LOG"
	rm -f "$RUN_DIR/dockerd.lock" "$RUN_DIR/dockerd.users"
	rmdir "$RUN_DIR" "$STATE_DIR" 2>/dev/null || true
	rmdir "$(dirname "$STATE_DIR")" 2>/dev/null || true
}

status() {
	if our_pid >/dev/null && answers; then
		log "running (pid $(our_pid)), socket $SOCK"
		return 0
	fi
	log "not running"
	return 1
}

# lock serialises start and stop between concurrent callers (test binaries
# run in parallel).
lock() {
	mkdir -p "$RUN_DIR"
	exec 9>"$RUN_DIR/dockerd.lock"
	flock -w 120 9 || die "timed out waiting for $RUN_DIR/dockerd.lock"
}

case "${1:-}" in
start) lock && start ;;
stop) lock && stop ;;
status) status ;;
env) print_env ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 64
	;;
esac
