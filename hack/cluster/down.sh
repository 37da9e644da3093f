#!/usr/bin/env bash
# down.sh stops the test cluster started by up.sh and restores the host: it
# stops only the processes up.sh started (pid files, then processes of the
# executables up.sh runs whose command line names the cluster directory, such
# as containerd shims, then the pods' processes in its cgroups), unmounts
# everything under the cluster directory (pod volumes, overlay rootfs, netns),
# and removes the CNI cache entries, container log links, cgroups, iptables
# chains and bridge it made, restores the sysctls it changed, and deletes the
# cluster directory. Safe to run when the cluster is down or half up.
#
# Set EPHEM_CLUSTER_KEEP_LOGS=DIR to copy the component logs to DIR first.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$SECONDS
require_root

kill_cgroup_pids() {
	local i pids
	for ((i = 0; i < 50; i++)); do
		pids="$(cgroup_pids)"
		[[ -z $pids ]] && return 0
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	log "warning: pod processes still alive: $(cgroup_pids | tr '\n' ' ')"
}

# delete_tasks deletes containerd's (dead) tasks so that their shims exit
# cleanly and remove their sockets from the fixed /run/containerd/s.
delete_tasks() {
	local sock="$D/containerd/containerd.sock" id
	pid_of containerd >/dev/null || return 0
	for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
		timeout 10 ctr --address "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
	done
}

stop_processes() {
	local i c pid
	# The kubelet first, so that it does not restart what we stop.
	if pid="$(pid_of kubelet)"; then stop_pid kubelet "$pid" 10; fi
	kill_cgroup_pids
	delete_tasks
	# The rest in parallel: with the kubelet gone, order does not matter.
	local -A pids=()
	for c in "${COMPONENTS[@]}"; do
		[[ $c == kubelet ]] && continue
		if pid="$(pid_of "$c")"; then
			pids[$c]=$pid
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	# Their state is deleted anyway: do not wait long for graceful exits.
	for c in "${!pids[@]}"; do stop_pid "$c" "${pids[$c]}" 5; done
	# Whatever is left that refers to our directory: containerd shims,
	# components whose pid file was lost.
	local cmd id sock
	for pid in $(our_pids); do
		cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
		log "stopping leftover process $pid: ${cmd:0:120}"
		kill -KILL "$pid" 2>/dev/null || true
		# A killed shim leaves its socket in the fixed /run/containerd/s,
		# named by the hash of containerd's address, namespace and task id.
		if [[ $cmd =~ -namespace\ ([^ ]+)\ -id\ ([^ ]+) ]]; then
			id="$D/containerd/containerd.sock/${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
			sock="/run/containerd/s/$(printf '%s' "$id" | sha256sum | cut -d' ' -f1)"
			rm -f "$sock"
		fi
	done
	for ((i = 0; i < 50; i++)); do [[ -z "$(our_pids)" ]] && break; sleep 0.1; done
	kill_cgroup_pids
}

unmount_all() {
	local m i
	for ((i = 0; i < 3; i++)); do
		for m in $(our_mounts); do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
		done
		[[ -z "$(our_mounts)" ]] && return 0
	done
}

remove_cgroups() {
	local h i
	for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
		[[ -d $h ]] || continue
		for ((i = 0; i < 20; i++)); do
			find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[[ -d $h ]] || break
			sleep 0.1
		done
		[[ -d $h ]] && log "warning: cannot remove cgroup $h"
	done
	return 0
}

remove_iptables() {
	local table chain
	iptables -D FORWARD -j "$CHAIN_FWD" 2>/dev/null || true
	iptables -D INPUT -j "$CHAIN_IN" 2>/dev/null || true
	for chain in "$CHAIN_FWD" "$CHAIN_IN"; do
		iptables -F "$chain" 2>/dev/null || true
		iptables -X "$chain" 2>/dev/null || true
	done
	# Chains the kubelet made (KUBE-KUBELET-CANARY, KUBE-FIREWALL, ...) that
	# were not on the host before up.sh ran.
	local orig="$D/host/iptables-chains.orig"
	[[ -f $orig ]] || return 0
	iptables-save | awk '/^\*/ {t = substr($1, 2)} /^:KUBE-/ {print t, substr($1, 2)}' |
		while read -r table chain; do
			grep -qx "$table $chain" "$orig" && continue
			log "removing iptables chain $table/$chain made by the kubelet"
			iptables-save -t "$table" | awk -v c="$chain" '$1 == "-A" && $0 ~ ("-j " c "( |$)") {sub(/^-A/, "-D"); print}' |
				while read -r rule; do eval "iptables -t $table $rule" || true; done
			iptables -t "$table" -F "$chain" 2>/dev/null || true
			iptables -t "$table" -X "$chain" 2>/dev/null || true
		done
	return 0
}

restore_sysctls() {
	local orig="$D/host/sysctl.orig" kv
	[[ -f $orig ]] || return 0
	while read -r kv; do
		[[ -n $kv ]] || continue
		if [[ "$(sysctl -n "${kv%%=*}")" != "${kv#*=}" ]]; then
			sysctl -q -w "$kv" >/dev/null && log "restored $kv"
		fi
	done <"$orig"
}

remove_host_files() {
	# CNI result cache (libcni's, fixed under /var/lib/cni): entries of our
	# network and of the loopback set-up in our pods' netns.
	local f l
	for f in /var/lib/cni/results/*; do
		[[ -f $f ]] || continue
		if [[ ${f##*/} == "$CNI_NETWORK"-* ]] || grep -qF "$D/" "$f"; then rm -f "$f"; fi
	done
	rm -rf "/var/lib/cni/networks/$CNI_NETWORK"
	# The kubelet's links in the fixed /var/log/containers that point at us.
	for l in /var/log/containers/*; do
		[[ -L $l && "$(readlink "$l")" == "$D/"* ]] && rm -f "$l"
	done
	# The kubelet's device-plugin socket, at a fixed path.
	rm -f /var/lib/kubelet/device-plugins/kubelet.sock
	# Directories that were absent before up.sh, now empty.
	local orig="$D/host/paths.orig" state path
	[[ -f $orig ]] || return 0
	while read -r state path; do
		[[ $state == absent && -d $path ]] || continue
		find "$path" -depth -type d -empty -delete 2>/dev/null || true
		[[ -e $path ]] && log "warning: $path was absent before up.sh and is not empty now"
	done <"$orig"
	return 0
}

# wait_for_users waits until no test process uses the cluster (they hold the
# users lock shared), keeping them out while the cluster goes down.
wait_for_users() {
	[[ -n ${EPHEM_CLUSTER_FORCE:-} ]] && return 0
	mkdir -p /run/lock
	exec 7>"$LOCK_BASE.users"
	flock -n -x 7 && return 0
	local wait="${EPHEM_CLUSTER_USERS_WAIT:-900}"
	log "waiting up to ${wait}s for the test processes using the cluster to finish (EPHEM_CLUSTER_FORCE=1 skips this)"
	flock -w "$wait" -x 7 || log "warning: test processes still use the cluster; stopping it anyway"
}

main() {
	wait_for_users
	# up.sh holds the state lock already when it cleans up a partial cluster.
	[[ -n ${EPHEM_CLUSTER_LOCKED:-} ]] || lock_state
	if [[ -n ${EPHEM_CLUSTER_KEEP_LOGS:-} && -d $D/logs ]]; then
		mkdir -p "$EPHEM_CLUSTER_KEEP_LOGS"
		cp -r "$D/logs/." "$EPHEM_CLUSTER_KEEP_LOGS/"
		log "copied logs to $EPHEM_CLUSTER_KEEP_LOGS"
	fi
	stop_processes
	unmount_all
	remove_cgroups
	remove_host_files
	remove_iptables
	if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
	restore_sysctls
	if [[ -n "$(our_mounts)" ]]; then
		die "mounts remain under $D: $(our_mounts | tr '\n' ' ')"
	fi
	rm -rf "$D"
	log "cluster down in $((SECONDS - t0)) s"
}

main "$@"
