#!/usr/bin/env bash
# check-clean.sh asserts that nothing of the test cluster is left on the host
# after down.sh: no process, mount, cgroup, iptables chain or rule, bridge,
# CNI cache entry, container log link or state directory. It lists what it
# finds and exits 1 if anything is left.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

left=()
[[ -e $D ]] && left+=("state directory $D")
for pid in $(our_pids); do
	left+=("process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-100)")
done
for m in $(our_mounts); do left+=("mount $m"); done
# Network namespaces of our pods live under $D (netns_mounts_under_state_dir),
# so they are covered by the mounts above; also check none leaked elsewhere.
for f in /var/run/netns/cni-*; do
	[[ -e $f ]] && left+=("netns $f")
done
for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do [[ -d $h ]] && left+=("cgroup $h"); done
ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
while read -r line; do left+=("iptables: $line"); done < <(
	iptables-save | grep -E "EPHEM-CLUSTER|KUBE-KUBELET-CANARY|$BRIDGE|${POD_CIDR%/*}" || true
)
for f in /var/lib/cni/results/"$CNI_NETWORK"-* /var/lib/cni/networks/"$CNI_NETWORK"; do
	[[ -e $f ]] && left+=("CNI cache $f")
done
for f in /var/lib/cni/results/*; do
	[[ -f $f ]] && grep -qF "$D/" "$f" && left+=("CNI cache $f")
done
[[ -e /var/lib/kubelet/device-plugins/kubelet.sock ]] && left+=("kubelet socket /var/lib/kubelet/device-plugins/kubelet.sock")
for l in /var/log/containers/*; do
	[[ -L $l && "$(readlink "$l")" == "$D/"* ]] && left+=("log link $l")
done
if ((${#left[@]})); then
	printf 'left behind by the cluster: %s\n' "${left[@]}" >&2
	exit 1
fi
echo "check-clean: nothing of the cluster is left on the host" >&2
