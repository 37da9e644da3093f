package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/kube"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

// kubeDebugOptions are the debug flags only Kubernetes targets use.
type kubeDebugOptions struct {
	Target          string
	Selector        string
	AllPods         bool
	CustomFile      string
	DryRun          bool
	Reuse           bool
	Timeout         time.Duration
	ImagePullPolicy string
	CopyTo          string
	Replace         bool
	SameNode        bool
	ShareProcesses  bool
	SetImage        []string
	Keep            map[string]*bool
	Remove          bool

	fs *pflag.FlagSet
}

func (k *kubeDebugOptions) addFlags(f *pflag.FlagSet) {
	k.fs = f
	f.StringVar(&k.Target, "target", "", "Kubernetes: the container whose namespaces to share (default: the pod's default container)")
	f.StringVarP(&k.Selector, "selector", "l", "", "Kubernetes: run in every running pod matching this label selector")
	f.BoolVar(&k.AllPods, "all-pods", false, "Kubernetes: run in every running pod of the workload, not one")
	f.StringVar(&k.CustomFile, "custom", "", "Kubernetes: a partial container (JSON or YAML) applied after the profile")
	f.BoolVar(&k.DryRun, "dry-run", false, "Kubernetes: print the container that would be added, and stop")
	f.BoolVar(&k.Reuse, "reuse", false, "Kubernetes: attach to a running debugger with the same image and profile instead of adding one")
	f.DurationVar(&k.Timeout, "timeout", 60*time.Second, "Kubernetes: how long to wait for the debug container to start")
	f.StringVar(&k.ImagePullPolicy, "image-pull-policy", "", "Kubernetes: Always, IfNotPresent or Never (same as --pull always|missing|never)")
	f.StringVar(&k.CopyTo, "copy-to", "", "Kubernetes: debug a copy of the pod with this name")
	f.BoolVar(&k.Replace, "replace", false, "Kubernetes, with --copy-to: delete the original pod")
	f.BoolVar(&k.SameNode, "same-node", false, "Kubernetes, with --copy-to: schedule the copy on the original's node")
	f.BoolVar(&k.ShareProcesses, "share-processes", true, "Kubernetes, with --copy-to: share the PID namespace among the copy's containers")
	f.StringSliceVar(&k.SetImage, "set-image", nil, "Kubernetes, with --copy-to: container images to change, NAME=IMAGE ('*' for all)")
	k.Keep = map[string]*bool{}
	for _, what := range []string{"labels", "annotations", "liveness", "readiness", "startup", "init-containers"} {
		v := false
		k.Keep[what] = &v
		f.BoolVar(&v, "keep-"+what, false, "Kubernetes, with --copy-to: keep the original's "+what)
	}
	f.BoolVar(&k.Remove, "rm", true, "Kubernetes, node targets: delete the node debugging pod at the end")
}

// validate checks the Kubernetes flags against the target, without I/O,
// and fills what they set in c.
func (k *kubeDebugOptions) validate(ref target.Ref, c *spec.Container) error {
	if ref.Kind != target.Kubernetes {
		for _, name := range []string{"target", "selector", "all-pods", "custom", "reuse", "copy-to", "image-pull-policy"} {
			if k.changed(name) {
				return usageError("--%s is for Kubernetes targets, not %s", name, ref.Scheme)
			}
		}
		return nil
	}
	switch k.ImagePullPolicy {
	case "":
	case "Always":
		c.PullPolicy = spec.PullAlways
	case "IfNotPresent":
		c.PullPolicy = spec.PullMissing
	case "Never":
		c.PullPolicy = spec.PullNever
	default:
		return usageError("--image-pull-policy %q: use Always, IfNotPresent or Never", k.ImagePullPolicy)
	}
	c.TargetContainer = k.Target
	if k.Timeout <= 0 {
		return usageError("--timeout must be positive")
	}
	if k.CopyTo == "" {
		for _, name := range []string{"replace", "same-node", "set-image", "share-processes"} {
			if k.changed(name) {
				return usageError("--%s goes with --copy-to", name)
			}
		}
	}
	if ref.Scheme == "node" && (k.CopyTo != "" || k.Selector != "" || k.AllPods) {
		return usageError("node targets take no --copy-to, -l or --all-pods")
	}
	for _, s := range k.SetImage {
		if n, img, ok := strings.Cut(s, "="); !ok || n == "" || img == "" {
			return usageError("--set-image %q: write NAME=IMAGE", s)
		}
	}
	return nil
}

func (k *kubeDebugOptions) changed(name string) bool { return k.fs != nil && k.fs.Changed(name) }

// backend builds the Kubernetes backend for these options.
func (k *kubeDebugOptions) backend(g *GlobalOptions, detach []byte) (runtime.Interface, error) {
	o := kube.Options{
		Config: g.Kube, Timeout: k.Timeout, Selector: k.Selector, AllPods: k.AllPods, DryRun: k.DryRun,
		Reuse: k.Reuse, DetachKeys: detach, Log: g.Streams.Err, RemoveNodePod: k.Remove,
	}
	if k.CustomFile != "" {
		b, err := os.ReadFile(k.CustomFile)
		if err != nil {
			return nil, usageError("--custom: %v", err)
		}
		o.Custom = b
	}
	if k.CopyTo != "" {
		co := &kube.CopyOptions{Name: k.CopyTo, Replace: k.Replace, SameNode: k.SameNode, ShareProcesses: k.ShareProcesses,
			SetImages:  map[string]string{},
			KeepLabels: *k.Keep["labels"], KeepAnnotations: *k.Keep["annotations"], KeepLiveness: *k.Keep["liveness"],
			KeepReadiness: *k.Keep["readiness"], KeepStartup: *k.Keep["startup"], KeepInitContainers: *k.Keep["init-containers"]}
		for _, s := range k.SetImage {
			n, img, _ := strings.Cut(s, "=")
			co.SetImages[n] = img
		}
		o.Copy = co
	}
	b, err := kube.New(o)
	if err != nil {
		return nil, fmt.Errorf("setting up the Kubernetes client: %w", err)
	}
	return b, nil
}
