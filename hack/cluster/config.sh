# config.sh: configuration files of containerd, CNI and the kubelet (the
# registry's comes from hack/images registry-config). Sourced by up.sh after
# lib.sh.
# shellcheck shell=bash

write_containerd_config() {
	local c="$D/containerd"
	mkdir -p "$c/root" "$c/state" "$c/opt" "$c/certs.d/$REGISTRY"
	# The local registry is plain HTTP: containerd pulls from it directly.
	cat >"$c/certs.d/$REGISTRY/hosts.toml" <<EOF2
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF2
	cat >"$c/config.toml" <<EOF2
version = 2
root = "$c/root"
state = "$c/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "$c/containerd.sock"

[ttrpc]
  address = "$c/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(pause_ref)"
  # Root in this VM lacks CAP_SYS_RESOURCE: without this, runc fails to set
  # the sandbox's oom_score_adj of -998.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  enable_cdi = false
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$c/runc"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF2
}

pause_ref() { echo "$REGISTRY/ephem/pause:test"; }

# write_cni_config: a bridge on $BRIDGE with host-local addresses and no
# gateway: pods reach each other and the node IP, and have no default route,
# so nothing leaves the machine.
write_cni_config() {
	mkdir -p "$D/cni/net.d" "$D/cni/ipam"
	cat >"$D/cni/net.d/10-$CNI_NETWORK.conflist" <<EOF2
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$D/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "${POD_CIDR%.*}.10", "gateway": "$NODE_IP"}]]
      }
    }
  ]
}
EOF2
}

write_kubelet_config() {
	local k="$D/kubelet"
	mkdir -p "$k/root" "$k/pod-logs" "$k/volume-plugins" "$k/manifests"
	cat >"$k/config.yaml" <<EOF2
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $D/pki/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $D/pki/kubelet-serving.crt
tlsPrivateKeyFile: $D/pki/kubelet-serving.key
rotateCertificates: false
serverTLSBootstrap: false
containerRuntimeEndpoint: unix://$D/containerd/containerd.sock
imageServiceEndpoint: unix://$D/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
resolvConf: ""
podCIDR: $POD_CIDR
podLogsDir: $k/pod-logs
volumePluginDir: $k/volume-plugins
serializeImagePulls: false
maxPods: 110
syncFrequency: 10s
fileCheckFrequency: 5s
staticPodPath: $k/manifests
nodeStatusUpdateFrequency: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
evictionPressureTransitionPeriod: 10s
shutdownGracePeriod: 0s
protectKernelDefaults: false
enableDebuggingHandlers: true
localStorageCapacityIsolation: true
EOF2
}
