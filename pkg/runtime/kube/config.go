package kube

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
)

// Registration returns the Kubernetes backend's entry in the registry.
func Registration() runtime.Registration {
	return runtime.Registration{
		Name:      "Kubernetes",
		FlagGroup: "Kubernetes flags",
		Schemes:   schemes(),
		NewConfig: func() runtime.Config { return &config{} },
	}
}

// config is the backend's flags for one command line.
type config struct {
	client clientcmd.ClientConfig
	fs     *pflag.FlagSet
	verb   string

	target, selector, custom, pullPolicy, copyTo string
	allPods, dryRun, reuse, remove, listAll      bool
	toolImage                                    string
	replace, sameNode, shareProcesses            bool
	mountVolumes                                 bool
	timeout                                      time.Duration
	setImage                                     []string
	keep                                         map[string]*bool
}

var (
	_ runtime.TargetImplier = (*config)(nil)
	_ runtime.DebugPreparer = (*config)(nil)
)

// AddFlags implements runtime.Config.
func (k *config) AddFlags(verb string, f *pflag.FlagSet) {
	if verb != runtime.VerbGlobal {
		k.verb = verb
	}
	switch verb {
	case runtime.VerbGlobal:
		k.client = connectionFlags(f)
	case runtime.VerbDebug:
		k.fs = f
		k.debugFlags(f)
	case runtime.VerbCopy, runtime.VerbNS, runtime.VerbCapture, runtime.VerbForward:
		f.StringVar(&k.toolImage, "image", "", "tool image of the helper debug container a pod gets for this (default $EPHEM_IMAGE, else busybox)")
	case runtime.VerbList:
		f.StringVarP(&k.selector, "selector", "l", "", "list the debug containers of pods matching this label selector")
		f.BoolVar(&k.listAll, "kube", false, "list the debug containers of every pod in the namespace")
	}
}

// connectionFlags binds kubectl's connection flags (--kubeconfig,
// --context, --cluster, -n, --as, --token, --server, --request-timeout...)
// and returns the client configuration they select. ephem's --user is the
// debug container's user, as for docker, so the kubeconfig user is
// --kube-user. The flags come from clientcmd rather than cli-runtime, whose
// import would register every API group at every ephem start.
func connectionFlags(fs *pflag.FlagSet) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	fs.StringVar(&rules.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	overrides := &clientcmd.ConfigOverrides{}
	names := clientcmd.RecommendedConfigOverrideFlags("")
	names.ContextOverrideFlags.AuthInfoName.LongName = "kube-user"
	clientcmd.BindOverrideFlags(overrides, fs, names)
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

func (k *config) debugFlags(f *pflag.FlagSet) {
	f.StringVar(&k.target, "target", "", "the container whose namespaces to share (default: the pod's default container)")
	f.StringVarP(&k.selector, "selector", "l", "", "run in every running pod matching this label selector")
	f.BoolVar(&k.allPods, "all-pods", false, "run in every running pod of the workload, not one")
	f.StringVar(&k.custom, "custom", "", "a partial container (JSON or YAML) applied after the profile")
	f.BoolVar(&k.dryRun, "dry-run", false, "print the container that would be added, and stop")
	f.BoolVar(&k.reuse, "reuse", false, "attach to a running debugger with the same image and profile instead of adding one")
	f.DurationVar(&k.timeout, "timeout", 60*time.Second, "how long to wait for the debug container to start")
	f.StringVar(&k.pullPolicy, "image-pull-policy", "", "Always, IfNotPresent or Never (same as --pull always|missing|never)")
	f.StringVar(&k.copyTo, "copy-to", "", "debug a copy of the pod with this name")
	f.BoolVar(&k.replace, "replace", false, "with --copy-to: delete the original pod")
	f.BoolVar(&k.sameNode, "same-node", false, "with --copy-to: schedule the copy on the original's node")
	f.BoolVar(&k.shareProcesses, "share-processes", true, "with --copy-to: share the PID namespace among the copy's containers")
	f.StringSliceVar(&k.setImage, "set-image", nil, "with --copy-to: container images to change, NAME=IMAGE ('*' for all)")
	k.keep = map[string]*bool{}
	for _, what := range []string{"labels", "annotations", "liveness", "readiness", "startup", "init-containers"} {
		v := false
		k.keep[what] = &v
		f.BoolVar(&v, "keep-"+what, false, "with --copy-to: keep the original's "+what)
	}
	f.BoolVar(&k.remove, "rm", true, "node targets: delete the node debugging pod at the end")
	f.BoolVar(&k.mountVolumes, "mount-target-volumes", false, "mount the target container's volumes (ConfigMaps, Secrets, PVCs...) at the same paths; needs --target in a pod of several containers")
}

// ImpliedTarget implements runtime.TargetImplier: -l SELECTOR (and, for
// ls, --kube) stand for the pods they select.
func (k *config) ImpliedTarget(verb string) (target.Ref, bool) {
	switch {
	case k.selector != "" && (verb == runtime.VerbDebug || verb == runtime.VerbList):
		return target.Ref{Scheme: target.SchemePod, Raw: "-l " + k.selector}, true
	case k.listAll && verb == runtime.VerbList:
		return target.Ref{Scheme: target.SchemePod, Raw: "--kube"}, true
	}
	return target.Ref{}, false
}

// PrepareDebug implements runtime.DebugPreparer.
func (k *config) PrepareDebug(ref target.Ref, c *spec.Container, imageGiven bool) (profile.Style, error) {
	switch k.pullPolicy {
	case "":
	case "Always":
		c.PullPolicy = spec.PullAlways
	case "IfNotPresent":
		c.PullPolicy = spec.PullMissing
	case "Never":
		c.PullPolicy = spec.PullNever
	default:
		return 0, usage("--image-pull-policy %q: use Always, IfNotPresent or Never", k.pullPolicy)
	}
	c.TargetContainer = k.target
	if k.timeout <= 0 {
		return 0, usage("--timeout must be positive")
	}
	if k.copyTo == "" {
		for _, name := range []string{"replace", "same-node", "set-image", "share-processes"} {
			if k.fs.Changed(name) {
				return 0, usage("--%s goes with --copy-to", name)
			}
		}
	}
	if ref.Scheme == target.SchemeNode && (k.copyTo != "" || k.selector != "" || k.allPods) {
		return 0, usage("node targets take no --copy-to, -l or --all-pods")
	}
	if ref.Scheme == target.SchemeNode && c.EnvFromTarget {
		return 0, usage("--env-from-target: node targets have no target container")
	}
	if k.mountVolumes && (ref.Scheme == target.SchemeNode || k.copyTo != "") {
		return 0, usage("--mount-target-volumes goes with an ephemeral container: not with node targets or --copy-to (a copy's containers keep their own mounts)")
	}
	for _, s := range k.setImage {
		if n, img, ok := strings.Cut(s, "="); !ok || n == "" || img == "" {
			return 0, usage("--set-image %q: write NAME=IMAGE", s)
		}
	}
	switch {
	case ref.Scheme == target.SchemeNode:
		return profile.Node, nil
	case k.copyTo != "":
		// As kubectl: a copy that only changes images (--set-image) adds
		// no debug container unless --image asks for one.
		if len(k.setImage) > 0 && !imageGiven {
			c.Image = ""
		}
		return profile.PodCopy, nil
	}
	return profile.Ephemeral, nil
}

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", runtime.ErrUsage, fmt.Sprintf(format, args...))
}

// New implements runtime.Config.
func (k *config) New(env runtime.Env) (runtime.Backend, error) {
	o := Options{
		Config: k.client, Timeout: k.timeout, Selector: k.selector, AllPods: k.allPods || k.verb == runtime.VerbList,
		DryRun: k.dryRun, Reuse: k.reuse, DetachKeys: env.DetachKeys, Log: env.Log, RemoveNodePod: k.remove,
		MountTargetVolumes: k.mountVolumes, ToolImage: k.toolImage,
	}
	if k.custom != "" {
		b, err := os.ReadFile(k.custom)
		if err != nil {
			return nil, usage("--custom: %v", err)
		}
		o.Custom = b
	}
	if k.copyTo != "" {
		co := &CopyOptions{Name: k.copyTo, Replace: k.replace, SameNode: k.sameNode, ShareProcesses: k.shareProcesses,
			SetImages:  map[string]string{},
			KeepLabels: *k.keep["labels"], KeepAnnotations: *k.keep["annotations"], KeepLiveness: *k.keep["liveness"],
			KeepReadiness: *k.keep["readiness"], KeepStartup: *k.keep["startup"], KeepInitContainers: *k.keep["init-containers"]}
		for _, s := range k.setImage {
			n, img, _ := strings.Cut(s, "=")
			co.SetImages[n] = img
		}
		o.Copy = co
	}
	b, err := New(o)
	if err != nil {
		return nil, fmt.Errorf("setting up the Kubernetes client: %w", err)
	}
	return b, nil
}
