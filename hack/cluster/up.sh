#!/usr/bin/env bash
# up.sh starts ephem's single-node Kubernetes test cluster: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd (CRI,
# runc) and a kubelet with CNI bridge networking, plus a plain-HTTP registry
# on 127.0.0.1 holding the test images. Everything listens on 127.0.0.1 or
# the cluster's own bridge and lives under $EPHEM_CLUSTER_DIR
# (default /var/lib/ephem-cluster). Running it again while the cluster is up
# does nothing; hack/cluster/down.sh stops it.
#
# The last two lines of its output are REGISTRY=127.0.0.1:<port> and
# KUBECONFIG=<absolute path>; $EPHEM_CLUSTER_DIR/cluster.env holds the same.
set -Eeuo pipefail
# shellcheck source-path=SCRIPTDIR

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=SCRIPTDIR/pki.sh
source "$here/pki.sh"
# shellcheck source=SCRIPTDIR/config.sh
source "$here/config.sh"

t0=$SECONDS
require_root

ensure_packages() {
	local p missing=()
	for p in $DEBIAN_PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing Debian packages: ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
		apt-get update >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
	fi
}

print_result() {
	cat >"$D/cluster.env" <<EOF2
EPHEM_CLUSTER_DIR=$D
EPHEM_KUBECTL=$D/bin/kubectl
REGISTRY=$REGISTRY
KUBECONFIG=$D/kubeconfig
EOF2
	echo "REGISTRY=$REGISTRY"
	echo "KUBECONFIG=$D/kubeconfig"
}

apiserver_ready() {
	curl -sf --max-time 2 --cacert "$D/pki/ca.crt" --cert "$D/pki/admin.crt" --key "$D/pki/admin.key" \
		"https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null
}

already_up() {
	local c
	for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || return 1; done
	apiserver_ready && kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

# on_error shows the end of each component's log to explain a failed start.
on_error() {
	local f
	log "start failed; last lines of the component logs (full logs in $D/logs):"
	for f in "$D"/logs/*.log; do
		[[ -f $f ]] || continue
		echo "---- $f" >&2
		# The registry logs every 404 of a push's existence checks: skip those.
		grep -v 'msg="response completed with error"' "$f" | tail -n 15 >&2
	done
	log "run hack/cluster/down.sh to clean up"
}

# check_ports fails early, naming the culprit, if a port we need is taken.
check_ports() {
	local port users
	for port in "$REGISTRY_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" 10248 10250; do
		users="$(ss -H -l -n -t -p "sport = :$port" 2>/dev/null)"
		[[ -z $users ]] || die "port $port is already in use: $users (set EPHEM_*_PORT to move ours)"
	done
}

setup_host() {
	# Remember the host's sysctls and iptables chains before touching them.
	if [[ ! -f $D/host/sysctl.orig ]]; then
		local s
		for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$D/host/sysctl.orig"
	fi
	if [[ ! -f $D/host/paths.orig ]]; then
		local path
		for path in "${HOST_PATHS[@]}"; do
			if [[ -e $path ]]; then echo "present $path"; else echo "absent $path"; fi
		done >"$D/host/paths.orig"
	fi
	if [[ ! -f $D/host/iptables-chains.orig ]]; then
		iptables-save | awk '/^\*/ {t = substr($1, 2)} /^:/ {print t, substr($1, 2)}' >"$D/host/iptables-chains.orig"
	fi
	# The node IP lives on the CNI bridge: no dummy interface in this kernel,
	# and neither loopback nor eth0 will do.
	ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
	ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	# Pods talk to each other across the bridge (the FORWARD policy may be
	# DROP if dockerd runs); nothing else goes in or out of the pod range.
	local chain
	for chain in "$CHAIN_FWD" "$CHAIN_IN"; do
		iptables -N "$chain" 2>/dev/null || iptables -F "$chain"
	done
	iptables -A "$CHAIN_FWD" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
	iptables -A "$CHAIN_FWD" -d "$POD_CIDR" -j DROP
	iptables -A "$CHAIN_FWD" -s "$POD_CIDR" -j DROP
	iptables -C FORWARD -j "$CHAIN_FWD" 2>/dev/null || iptables -I FORWARD 1 -j "$CHAIN_FWD"
	iptables -A "$CHAIN_IN" -i lo -j RETURN
	iptables -A "$CHAIN_IN" -i "$BRIDGE" -j RETURN
	iptables -A "$CHAIN_IN" -d "$POD_CIDR" -j DROP
	iptables -C INPUT -j "$CHAIN_IN" 2>/dev/null || iptables -I INPUT 1 -j "$CHAIN_IN"
	# The kubelet's cgroup root, in every v1 hierarchy (cpuset needs its
	# cpus and mems copied from the parent before tasks can join).
	local h
	for h in /sys/fs/cgroup/*/; do
		[[ -f $h/cgroup.procs ]] || continue
		mkdir -p "$h$CGROUP_ROOT"
		if [[ -f $h/cpuset.cpus ]]; then
			cat "$h/cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
			cat "$h/cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
		fi
	done
}

start_registry_and_images() {
	log "building the image tool"
	(cd "$repo" && GOFLAGS=-mod=mod go build -o "$D/bin/ephem-images" ./hack/images)
	mkdir -p "$D/registry/data"
	"$D/bin/ephem-images" registry-config -registry "$REGISTRY" -dir "$D/registry/data" >"$D/registry/config.yml"
	start_daemon registry /usr/bin/docker-registry serve "$D/registry/config.yml"
	wait_component registry 20 curl -sf --max-time 1 "http://$REGISTRY/v2/"
	log "pushing the test images"
	local args=(-cache "${EPHEM_TEST_CACHE:-/var/cache/ephem/testimages}" push -registry "$REGISTRY")
	[[ -n ${EPHEM_LARGE_MB:-} ]] && args+=(-large-mb "$EPHEM_LARGE_MB")
	"$D/bin/ephem-images" "${args[@]}" >"$D/images.env"
}

start_control_plane() {
	local p="$D/pki"
	start_daemon etcd etcd --name ephem --data-dir "$D/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "ephem=http://127.0.0.1:$ETCD_PEER_PORT" --logger zap --log-level warn
	wait_component etcd 30 curl -sf --max-time 1 "http://127.0.0.1:$ETCD_PORT/health"
	start_daemon kube-apiserver "$D/bin/kube-apiserver" \
		--bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address="$NODE_IP" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--service-cluster-ip-range="$SERVICE_CIDR" --endpoint-reconciler-type=none \
		--client-ca-file="$p/ca.crt" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
		--kubelet-client-certificate="$p/apiserver-kubelet-client.crt" --kubelet-client-key="$p/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$p/ca.crt" --kubelet-preferred-address-types=InternalIP \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction,PodSecurity \
		--allow-privileged=true --profiling=false --v=1
	wait_component kube-apiserver 60 apiserver_ready
	start_daemon kube-controller-manager "$D/bin/kube-controller-manager" \
		--bind-address=127.0.0.1 --secure-port=0 --kubeconfig="$D/controller-manager.kubeconfig" \
		--leader-elect=false --use-service-account-credentials \
		--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
		--cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
		--allocate-node-cidrs=false --flex-volume-plugin-dir="$D/controller-manager/volume-plugins" \
		--profiling=false --v=1
	start_daemon kube-scheduler "$D/bin/kube-scheduler" \
		--bind-address=127.0.0.1 --secure-port=0 --kubeconfig="$D/scheduler.kubeconfig" \
		--leader-elect=false --profiling=false --v=1
}

start_node() {
	write_containerd_config
	write_cni_config
	write_kubelet_config
	start_daemon containerd containerd --config "$D/containerd/config.toml"
	wait_component containerd 30 ctr --address "$D/containerd/containerd.sock" version
	start_daemon kubelet "$D/bin/kubelet" \
		--config="$D/kubelet/config.yaml" --kubeconfig="$D/kubelet.kubeconfig" \
		--root-dir="$D/kubelet/root" --cert-dir="$D/kubelet/pki" \
		--node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --v=1
	wait_component kubelet 60 kubectl_ get node "$NODE_NAME"
	kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=60s >&2
	wait_for "the default service account" 60 kubectl_ -n default get serviceaccount default
}

main() {
	lock_state
	if [[ -d $D ]] && already_up; then
		log "the cluster in $D is already up"
		print_result
		return 0
	fi
	if [[ -d $D/run ]]; then
		log "found a stopped or partial cluster in $D; cleaning it up first"
		EPHEM_CLUSTER_FORCE=1 EPHEM_CLUSTER_LOCKED=1 "$here/down.sh" >&2
	fi
	ensure_packages
	check_ports
	local bin
	bin="$("$here/build-k8s.sh" | tail -n 1)"
	mkdir -p "$D/bin" "$D/host" "$D/logs" "$D/run"
	local c
	for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
		ln -sfn "$bin/$c" "$D/bin/$c"
	done
	trap on_error ERR
	setup_host
	make_pki
	write_kubeconfig "$D/kubeconfig" admin
	write_kubeconfig "$D/controller-manager.kubeconfig" controller-manager
	write_kubeconfig "$D/scheduler.kubeconfig" scheduler
	write_kubeconfig "$D/kubelet.kubeconfig" kubelet-client
	start_registry_and_images
	start_control_plane
	start_node
	trap - ERR
	log "cluster up in $((SECONDS - t0)) s (Kubernetes $K8S_VERSION, node $NODE_NAME, logs in $D/logs)"
	print_result
}

main "$@"
