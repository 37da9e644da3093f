package target

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// EnvCRIEndpoint names the CRI runtime's socket, as for crictl: a path or
// unix://PATH.
const EnvCRIEndpoint = "CONTAINER_RUNTIME_ENDPOINT"

// DefaultCRIEndpoints are tried in order when $CONTAINER_RUNTIME_ENDPOINT
// is empty: the first that answers CRI's Version call is used.
var DefaultCRIEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///run/crio/crio.sock",
	"unix:///var/run/cri-dockerd.sock",
}

// CRIRuntime is the trace of a CRI runtime's containers on the host, for
// finding one by its full ID when no CRI socket answers: containerd's
// tasks in namespace k8s.io and cgroups cri-containerd-ID, CRI-O's
// crio-ID, cri-dockerd's docker-ID, or a cgroup named by the ID alone
// (cgroupfs: /kubepods/.../ID).
var CRIRuntime = Runtime{TaskNamespace: "k8s.io", CgroupPrefixes: []string{"cri-containerd-", "crio-", "docker-"}}

// criTimeout bounds the whole conversation with the CRI runtime.
const criTimeout = 10 * time.Second

// ParseCRI is the Parse of "cri://ID|NAMESPACE/POD[/CONTAINER]": a
// container's ID (or a unique prefix of it), or a pod's container by the
// pod's namespace and name.
func ParseCRI(r *Ref, rest string) error {
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		if rest == "" {
			return errors.New("missing container ID")
		}
		if strings.Trim(rest, "0123456789abcdef") != "" {
			return errors.New("a CRI container ID is lowercase hex digits; a pod's container is cri://NAMESPACE/POD[/CONTAINER]")
		}
		r.Name = rest
		return nil
	case 2, 3:
	default:
		return errors.New("too many '/': a pod's container is cri://NAMESPACE/POD[/CONTAINER]")
	}
	if !dnsName(parts[0], 63, false) {
		return fmt.Errorf("%q is not a Kubernetes namespace (lowercase letters, digits and '-', at most 63)", parts[0])
	}
	if !dnsName(parts[1], 253, true) {
		return fmt.Errorf("%q is not a pod name (lowercase letters, digits, '-' and '.', at most 253)", parts[1])
	}
	r.Namespace, r.Name = parts[0], parts[1]
	if len(parts) == 3 {
		if !dnsName(parts[2], 63, false) {
			return fmt.Errorf("%q is not a container name (lowercase letters, digits and '-', at most 63)", parts[2])
		}
		r.Container = parts[2]
	}
	return nil
}

// dnsName reports whether s is a DNS label (or, with dots, a subdomain)
// of at most max bytes.
func dnsName(s string, maxLen int, dots bool) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if strings.IndexFunc(label, func(c rune) bool { return (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' }) >= 0 {
			return false
		}
	}
	return dots || !strings.Contains(s, ".")
}

// ResolveCRI resolves "cri://ID|NAMESPACE/POD[/CONTAINER]" through the CRI
// API of the runtime at $CONTAINER_RUNTIME_ENDPOINT, else of the first of
// DefaultCRIEndpoints that answers. When none answers, a container given
// by its full ID is still found from /proc (see FindContainerProcess).
func ResolveCRI(ctx context.Context, r Ref) (Process, error) {
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	c, err := NewCRIClient(os.Getenv(EnvCRIEndpoint))
	if err != nil {
		return Process{}, err
	}
	defer c.Close()
	p, err := c.resolve(ctx, r)
	if err != nil && r.Namespace == "" && IsFullID(r.Name) && c.Down(err) {
		return resolveWithoutAPI(err, "CRI container "+r.Name, r.Name, CRIRuntime)
	}
	if err != nil {
		return Process{}, err
	}
	return p, CheckAlive(p.PID)
}

// resolve finds the container r names and its init process.
func (c *CRIClient) resolve(ctx context.Context, r Ref) (Process, error) {
	if err := c.connect(ctx); err != nil {
		return Process{}, err
	}
	if !c.knownNot(criRuntimeCRIO) {
		c.preDial(ctx) // for CRI-O's inspect endpoint
	}
	var id, desc string
	var err error
	if r.Namespace == "" {
		id, err = c.containerByID(ctx, r.Name)
		desc = "CRI container " + shortID(id)
	} else {
		var name string
		id, name, err = c.containerInPod(ctx, r.Namespace, r.Name, r.Container)
		desc = "CRI container " + r.Namespace + "/" + r.Name + "/" + name + " (" + shortID(id) + ")"
	}
	if err != nil {
		return Process{}, err
	}
	pid, err := c.containerPID(ctx, id)
	if err != nil {
		return Process{}, err
	}
	return Process{PID: pid, Description: desc + " on " + c.where()}, nil
}

// shortID is the 12-digit form of a container ID, for messages.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containerByID returns the full ID of the container whose ID is id or
// begins with it.
func (c *CRIClient) containerByID(ctx context.Context, id string) (string, error) {
	if IsFullID(id) {
		return id, nil
	}
	ctrs, err := c.listContainers(ctx, false)
	if err != nil {
		return "", c.apiError(err)
	}
	var match []string
	for _, ctr := range ctrs {
		if strings.HasPrefix(ctr.id, id) {
			match = append(match, ctr.id)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return "", fmt.Errorf("%w: the CRI runtime at %s has no container whose ID begins with %q: list them with crictl ps -a",
			ErrNotFound, c.where(), id)
	}
	sort.Strings(match)
	for i, m := range match {
		match[i] = "cri://" + m
	}
	return "", fmt.Errorf("%w: %q begins the IDs of %d CRI containers: use one of %s",
		ErrInvalid, id, len(match), strings.Join(match, ", "))
}

// Labels the kubelet gives each container it creates.
const (
	criPodNamespaceLabel = "io.kubernetes.pod.namespace"
	criPodNameLabel      = "io.kubernetes.pod.name"
	criContainerLabel    = "io.kubernetes.container.name"
)

// containerInPod returns the ID and name of the running container called
// name (any, when name is empty and there is just one) in the ready pod
// sandbox ns/pod. The running containers and the ready sandboxes are
// listed at once (one round trip): the kubelet's containers carry their
// pod's labels; others' (crictl's) are found by the sandbox whose
// metadata names the pod.
func (c *CRIClient) containerInPod(ctx context.Context, ns, pod, name string) (id, ctrName string, err error) {
	l, sb, sbErr, err := c.listPod(ctx, ns, pod)
	if err != nil {
		return "", "", err
	}
	var labelled []criContainer
	for _, ctr := range l {
		lb := ctr.labels
		if lb[criPodNamespaceLabel] == ns && lb[criPodNameLabel] == pod && (name == "" || lb[criContainerLabel] == name) {
			labelled = append(labelled, ctr)
		}
	}
	if len(labelled) > 0 {
		return pickContainer(labelled, ns, pod, name)
	}
	if sbErr != nil {
		return "", "", sbErr
	}
	var running []criContainer
	for _, ctr := range l {
		if ctr.podSandboxID == sb.id && (name == "" || ctr.name == name) {
			running = append(running, ctr)
		}
	}
	if len(running) == 0 && name != "" {
		return "", "", fmt.Errorf("%w: pod %s/%s has no running container %q on the CRI runtime at %s: list them with crictl ps -a --pod %s",
			ErrNotFound, ns, pod, name, c.where(), shortID(sb.id))
	}
	if len(running) == 0 {
		return "", "", fmt.Errorf("%w: pod %s/%s has no running container on the CRI runtime at %s", ErrNotFound, ns, pod, c.where())
	}
	return pickContainer(running, ns, pod, name)
}

// pickContainer returns the newest of running (a restarted container's
// attempts share a name) when a name was given or there is one; several
// names are ErrInvalid, listing each.
func pickContainer(running []criContainer, ns, pod, name string) (id, ctrName string, err error) {
	sort.Slice(running, func(i, j int) bool { return running[i].createdAt > running[j].createdAt })
	names := map[string]bool{}
	for _, ctr := range running {
		names[ctr.name] = true
	}
	if name == "" && len(names) > 1 {
		refs := make([]string, 0, len(names))
		for n := range names {
			refs = append(refs, "cri://"+ns+"/"+pod+"/"+n)
		}
		sort.Strings(refs)
		return "", "", fmt.Errorf("%w: pod %s/%s runs %d containers: name one: %s",
			ErrInvalid, ns, pod, len(refs), strings.Join(refs, ", "))
	}
	return running[0].id, running[0].name, nil
}

// listPod lists at once (one round trip) the running containers, the
// ready sandboxes and, unless it is known, the runtime's name (for
// containerPID). It returns the containers, and the newest ready sandbox
// whose metadata names pod in namespace ns or why there is none.
func (c *CRIClient) listPod(ctx context.Context, ns, pod string) (criContainerList, *criSandbox, error, error) {
	var ctrList criContainerList
	var sbList criSandboxList
	var version criVersion
	ctrs := &h2Call{method: criListContainers, resp: &ctrList, req: criListContainersReq(true)}
	sbs := &h2Call{method: criListPodSandbox, resp: &sbList, req: criListSandboxesReq(true)}
	calls := []*h2Call{ctrs, sbs}
	c.mu.Lock()
	named := c.named
	c.mu.Unlock()
	versionCall := &h2Call{method: criVersionMethod, resp: &version}
	if !named {
		calls = append(calls, versionCall)
	}
	c.h2.batch(ctx, calls...)
	if !named && versionCall.err == nil {
		c.setName(version.runtimeName)
	}
	if ctrs.err != nil {
		return nil, nil, nil, c.apiError(ctrs.err)
	}
	var sb *criSandbox
	var sbErr error
	if sbs.err != nil {
		sbErr = c.apiError(sbs.err)
	} else if sb, sbErr = c.readySandbox(sbList, ns, pod); sbErr != nil {
		sb = nil
	}
	return ctrList, sb, sbErr, nil
}

// readySandbox returns the ready pod sandbox of resp whose metadata names
// pod in namespace ns (the newest, should there be several).
func (c *CRIClient) readySandbox(sbs criSandboxList, ns, pod string) (*criSandbox, error) {
	var best *criSandbox
	for i, sb := range sbs {
		if sb.namespace == ns && sb.name == pod && (best == nil || sb.createdAt > best.createdAt) {
			best = &sbs[i]
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: the CRI runtime at %s runs no pod %s/%s: list them with crictl pods",
			ErrNotFound, c.where(), ns, pod)
	}
	return best, nil
}

// containerPID returns the host PID of running container id's init
// process: from containerd's own task API when the runtime is containerd,
// or CRI-O's inspect endpoint when it is CRI-O (cheap calls, on the same
// socket), else from the "pid" of its verbose status (containerd and
// CRI-O put it there), else from /proc by its ID (cri-dockerd).
func (c *CRIClient) containerPID(ctx context.Context, id string) (int, error) {
	switch c.runtimeName(ctx) {
	case criRuntimeCRIO:
		if pid := c.crioPID(ctx, id); pid > 0 {
			return pid, nil
		}
	case criRuntimeContainerd, "":
		if pid := c.containerdTaskPID(ctx, id); pid > 0 {
			return pid, nil
		}
	}
	st, err := c.containerStatus(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return 0, fmt.Errorf("%w: the CRI runtime at %s has no container %s (gone?): list them with crictl ps -a",
				ErrNotFound, c.where(), id)
		}
		return 0, c.apiError(err)
	}
	if st.state != criContainerRunning {
		return 0, fmt.Errorf("%w: CRI container %s is %s, not running", ErrNotFound, shortID(st.id), criStateName(st.state))
	}
	if pid := infoPID(st.info["info"]); pid > 0 {
		return pid, nil
	}
	pid, err := FindContainerProcess(CRIRuntime, st.id)
	if err != nil {
		return 0, fmt.Errorf("%w: the CRI runtime at %s gives no pid for container %s, and /proc has none either", ErrNotFound, c.where(), shortID(id))
	}
	return pid, nil
}
