package kube

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Sentinel errors of this backend; the CLI maps them to exit codes.
var (
	// ErrConfig marks a missing or broken kubeconfig.
	ErrConfig = runtime.NewKind(runtime.ErrConfig, "kubeconfig")
	// ErrDisabled marks a cluster without ephemeral containers.
	ErrDisabled = fmt.Errorf("%w: ephemeral containers are disabled on this cluster", runtime.ErrUnsupported)
)

// Options configure the backend.
type Options struct {
	// Config is the kubeconfig as kubectl's flags (--kubeconfig, --context,
	// -n, --as...) select it.
	Config clientcmd.ClientConfig
	// Timeout bounds the wait for the debug container to start.
	Timeout time.Duration
	// Selector picks pods by label (-l); with AllPods a workload's pods all.
	Selector string
	// AllPods runs the command in every pod the reference names.
	AllPods bool
	// Custom is a partial container (JSON or YAML) applied after the profile.
	Custom []byte
	// DryRun prints the container that would be added and stops.
	DryRun bool
	// Reuse attaches to a running debugger with the same image and profile.
	Reuse bool
	// DetachKeys end an interactive attachment without ending the container.
	DetachKeys []byte
	// Log receives status lines (waiting reasons, hints).
	Log io.Writer
	// Copy, when set, debugs a copy of the pod instead (--copy-to).
	Copy *CopyOptions
	// RemoveNodePod deletes a node debugging pod at the end (--rm).
	RemoveNodePod bool
	// MountTargetVolumes gives the debug container the target container's
	// volume mounts (--mount-target-volumes, see volumes.go).
	MountTargetVolumes bool
	// ToolImage is the image of the helper debug container that cp, ns,
	// capture and port-forward's relay run in ("": $EPHEM_IMAGE, else
	// busybox).
	ToolImage string
}

// Backend is the Kubernetes backend. It is safe for concurrent use: it is
// never changed after New, and each operation keeps its own state in a
// call.
type Backend struct {
	opts      Options
	client    Client
	config    *rest.Config
	namespace string // the default: -n's, else the kubeconfig context's
	explicit  bool   // the namespace came from -n, not the kubeconfig
}

// call is one operation's state: the namespace it works in, its log and
// its timer.
type call struct {
	*Backend
	opts      Options // the backend's, with this call's Log
	namespace string
	timer     *runtime.Timer
	// reviews, shared by the pods of a fan-out, asks the API server each
	// access question once.
	reviews *reviewCache
	// listed is where resolvePods listed the pods of a selector from.
	listed podListing
	// hub, in a fan-out, is the one watch of all its pods.
	hub *podHub
}

var (
	_ runtime.Debugger = (*Backend)(nil)
	_ runtime.Lister   = (*Backend)(nil)
	_ runtime.Attacher = (*Backend)(nil)
)

// newCall returns a call in the backend's namespace.
func (b *Backend) newCall() *call {
	return &call{Backend: b, opts: b.opts, namespace: b.namespace}
}

// callFor returns a call in the namespace ref names, if it names one that
// does not contradict -n.
func (b *Backend) callFor(ref target.Ref) (*call, error) {
	c := b.newCall()
	if ref.Namespace != "" {
		if b.explicit && ref.Namespace != b.namespace {
			return nil, fmt.Errorf("%w: %s names namespace %q but -n says %q", runtime.ErrInvalidSpec, ref, ref.Namespace, b.namespace)
		}
		c.namespace = ref.Namespace
	}
	return c, nil
}

// New builds the backend's clients from kubectl's flags (no request is
// made yet).
func New(o Options) (*Backend, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	cfg, err := o.Config.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: loading: %w: set KUBECONFIG or --kubeconfig", ErrConfig, err)
	}
	ns, explicit, err := o.Config.Namespace()
	if err != nil {
		return nil, fmt.Errorf("%w: reading the namespace: %w", ErrConfig, err)
	}
	// client-go's default client-side limit (5 requests a second, bursts
	// of 10) made a fan-out over 30 pods wait 16 s on itself; the fan-out
	// bounds its pods in flight instead (fanOutParallel).
	if cfg.QPS == 0 && cfg.Burst == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = clientQPS, clientBurst
	}
	client, err := NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: creating the Kubernetes client: %w", ErrConfig, err)
	}
	return &Backend{opts: o, client: client, config: cfg, namespace: ns, explicit: explicit}, nil
}

// NewForClient returns a backend on a given client (tests adapt client-go's
// fake clientset).
func NewForClient(o Options, client Client, config *rest.Config, namespace string) *Backend {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	return &Backend{opts: o, client: client, config: config, namespace: namespace}
}

// Debug implements runtime.Debugger.
func (b *Backend) Debug(ctx context.Context, ref target.Ref, c spec.Container, streams session.Streams) error {
	k, err := b.callFor(ref)
	if err != nil {
		return err
	}
	return k.debug(ctx, ref, c, streams)
}

func (b *call) debug(ctx context.Context, ref target.Ref, c spec.Container, streams session.Streams) error {
	switch {
	case ref.Scheme == target.SchemeNode:
		return b.debugNode(ctx, ref.Name, c, streams)
	case b.opts.Copy != nil:
		pod, err := b.onePod(ctx, ref)
		if err != nil {
			return err
		}
		return b.debugCopy(ctx, pod, ref.Container, c, streams)
	}
	lookup := ctx
	if !b.opts.DryRun {
		// preflight's access question, asked beside the lookup.
		var wait func()
		lookup, wait = b.askAhead(ctx, c.Stdin)
		defer wait()
	}
	pods, err := b.resolvePods(lookup, ref)
	if err != nil {
		return err
	}
	if len(pods) > 1 {
		return b.fanOut(ctx, pods, ref.Container, c, streams)
	}
	return b.debugPod(ctx, pods[0], ref.Container, c, streams)
}
