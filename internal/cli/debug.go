package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// DefaultImage is the debug image when neither --image nor EPHEM_IMAGE is set.
const DefaultImage = "busybox:latest"

// DebugOptions are the inputs of "ephem debug".
type DebugOptions struct {
	g *GlobalOptions

	TargetArg     string
	Image         string
	Pull          string
	PullTimeout   time.Duration
	MaxImageSize  string
	CacheMinFree  string
	Env           []string
	EnvFromTarget bool
	User          string
	WorkingDir    string
	Profile       string
	Stdin, TTY    bool
	Quiet         bool
	SharePID      bool
	ArgumentsOnly bool
	Insecure      []string
	DetachKeys    string
	Command       []string
	Record        recordFlags

	flags     *pflag.FlagSet
	implied   *target.Ref // the target a backend's flags stand for (-l)
	target    target.Ref
	backend   backend
	container spec.Container
	detach    []byte
	maxImage  int64 // bytes; 0: no cap
	minFree   int64 // bytes; 0: the default, -1: no floor
}

func newDebugCmd(g *GlobalOptions) *cobra.Command {
	o := &DebugOptions{g: g}
	cmd := &cobra.Command{
		Use:   "debug TARGET [flags] [-- COMMAND [ARGS...]]",
		Short: "Start a debug container in a target's namespaces",
		Example: `  ephem debug pid:4242 --image busybox -- wget -qO- localhost:80
  ephem debug docker://web -it --image nicolaka/netshoot
  ephem debug docker://web -- ls /proc/1/root/etc
  ephem debug containerd://k8s.io/3f2a9c -it --image busybox
  ephem debug podman://alice/web -- wget -qO- localhost:80       # alice's rootless podman container (as root)
  ephem debug docker://crashed -- cat /target/var/log/app.log     # a stopped container: read-only at /target
  ephem debug image://registry.example/app:v2 -- ls /target/etc   # an image: read-only at /target
  ephem debug pod/web --target app --profile netadmin --image toolbox -- tcpdump -i any -c 5`,
		Long: `Start a debug container in a target's namespaces.

Targets: ` + target.Supported() + `.
Exit codes: the command's own; ephem's failures use 64-78 (see docs/exit-codes.md).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args, cmd.ArgsLenAtDash()); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return runDebug(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", envOr("EPHEM_IMAGE", DefaultImage), "debug image: a registry reference, oci:DIR[:TAG] or docker-archive:FILE (env EPHEM_IMAGE)")
	f.StringVar(&o.Pull, "pull", string(spec.PullMissing), "when to pull the image: always, missing or never")
	f.StringVar(&o.MaxImageSize, "max-image-size", "", "refuse an image that unpacks to more than this (such as 2G; default: no cap)")
	f.StringVar(&o.CacheMinFree, "cache-min-free", "256M", "stop unpacking before the cache's file system has less free space than this (0: no floor)")
	f.DurationVar(&o.PullTimeout, "pull-timeout", image.DefaultStallTimeout, "give up on a registry request that makes no progress for this long (it is retried, then ephem exits 68)")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable K=V (repeatable)")
	f.BoolVar(&o.EnvFromTarget, "env-from-target", false, "take the target's environment, but not its PATH: locally its process's, under the image's; on Kubernetes its container's env and envFrom (-e overrides it)")
	f.StringVarP(&o.User, "user", "u", "", "run as this user: uid[:gid] or name[:group] (default: the image's)")
	f.StringVarP(&o.WorkingDir, "workdir", "w", "", "working directory (default: the image's)")
	f.StringVar(&o.Profile, "profile", profile.Default, "security profile: "+strings.Join(profile.Names(), ", "))
	f.BoolVarP(&o.Stdin, "stdin", "i", false, "keep standard input open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a terminal (needs -i)")
	f.BoolVar(&o.SharePID, "share-pid", true, "join the target's PID namespace (its processes visible, its root at /proc/1/root)")
	f.BoolVar(&o.ArgumentsOnly, "arguments-only", false, "pass the words after -- as arguments to the image's entrypoint")
	f.StringArrayVar(&o.Insecure, "insecure-registry", nil, "allow plain HTTP to this registry host (repeatable; loopback always is)")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "print no pull progress")
	f.StringVar(&o.DetachKeys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches from a terminal session")
	o.Record.addFlags(f)
	setFlagGroup(f, groupImage, "image", "pull", "quiet")
	// The kubelet pulls a pod's images: these shape only ephem's own pulls.
	setFlagGroup(f, groupLocal, "max-image-size", "cache-min-free", "pull-timeout", "insecure-registry")
	o.flags = f
	g.backends.addFlags(runtime.VerbDebug, f)
	return cmd
}

// runDebug runs validated options; tests replace it to inspect them.
var runDebug = func(ctx context.Context, o *DebugOptions) error { return o.Run(ctx) }

// Complete fills the options from the arguments.
func (o *DebugOptions) Complete(args []string, dash int) error {
	if ref, ok := o.g.backends.implied(runtime.VerbDebug); ok && (len(args) == 0 || dash == 0) {
		if dash >= 0 {
			o.Command = args[dash:]
		}
		o.TargetArg, o.implied = "", &ref
		return nil
	}
	switch {
	case len(args) == 0:
		return usageError("debug needs a target: %s", target.Supported())
	case dash == 0:
		return usageError("the target goes before --: ephem debug TARGET -- COMMAND")
	case dash < 0 && len(args) > 1:
		return usageError("put the command after --: ephem debug %s -- %s", args[0], strings.Join(args[1:], " "))
	case dash > 1:
		return usageError("one target only, before --; got %q", args[:dash])
	}
	if strings.TrimSpace(args[0]) == "" {
		return usageError("the target is empty: %s", target.Supported())
	}
	o.TargetArg = args[0]
	if dash > 0 {
		o.Command = args[dash:]
	}
	return nil
}

// envName reports whether s is a shell variable name.
func envName(s string) bool {
	for i, c := range s {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// Validate checks the options without I/O and builds the container spec.
func (o *DebugOptions) Validate() error {
	ref, err := o.parseTarget()
	if err != nil {
		return err
	}
	if o.backend, err = o.g.backends.lookup(ref); err != nil {
		return err
	}
	if err := checkOwnFlags(o.flags, o.backend, ref); err != nil {
		return err
	}
	o.target = ref
	if o.Image, err = o.g.configImage(o.flags, o.backend.reg.Name, o.Image); err != nil {
		return err
	}
	switch spec.PullPolicy(o.Pull) {
	case spec.PullAlways, spec.PullMissing, spec.PullNever:
	default:
		return usageError("--pull %q: use always, missing or never", o.Pull)
	}
	for flag, v := range map[string]*string{"max-image-size": &o.MaxImageSize, "cache-min-free": &o.CacheMinFree} {
		if *v == "" {
			continue
		}
		n, err := image.ParseSize(*v)
		if err != nil {
			return usageError("--%s: %v", flag, err)
		}
		if flag == "max-image-size" {
			o.maxImage = n
		} else if o.minFree = n; n == 0 {
			o.minFree = -1 // no floor
		}
	}
	if o.PullTimeout <= 0 {
		return usageError("--pull-timeout %s: give a positive duration, such as 30s", o.PullTimeout)
	}
	if o.TTY && !o.Stdin {
		return usageError("-t needs -i: use -it for an interactive terminal")
	}
	if err := o.Record.check(o.TTY); err != nil {
		return err
	}
	if o.WorkingDir != "" && !path.IsAbs(o.WorkingDir) {
		return usageError("--workdir %q: give an absolute path inside the image, such as /tmp", o.WorkingDir)
	}
	if _, err := image.ParseReference(o.Image, o.Insecure); err != nil {
		return err
	}
	if o.detach, err = parseDetachKeys(o.DetachKeys); err != nil {
		return err
	}
	c := spec.Container{
		Image: o.Image, PullPolicy: spec.PullPolicy(o.Pull), User: o.User, WorkingDir: o.WorkingDir,
		Stdin: o.Stdin, TTY: o.TTY, SharePID: o.SharePID, EnvFromTarget: o.EnvFromTarget,
	}
	if o.ArgumentsOnly {
		c.Args = o.Command
	} else {
		c.Command = o.Command
	}
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envName(k) {
			return usageError("--env %q: write NAME=VALUE", kv)
		}
		c.Env = append(c.Env, spec.EnvVar{Name: k, Value: v})
	}
	style := profile.Ephemeral
	if p, ok := o.backend.cfg.(runtime.DebugPreparer); ok {
		imageGiven := o.flags.Changed("image") || os.Getenv("EPHEM_IMAGE") != ""
		if style, err = p.PrepareDebug(ref, &c, imageGiven); err != nil {
			return err
		}
	}
	p, err := profile.Get(o.Profile)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := p.Apply(&c, style); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	o.container = c
	return nil
}

// parseTarget returns the target: the argument, or what a backend's flags
// stand for.
func (o *DebugOptions) parseTarget() (target.Ref, error) {
	if o.TargetArg == "" && o.implied != nil {
		return *o.implied, nil
	}
	return target.Parse(o.TargetArg)
}

// Run starts the debug container on the backend the target belongs to.
func (o *DebugOptions) Run(ctx context.Context) error {
	// Without a terminal on standard input a shell would wait forever.
	if o.container.TTY && !o.g.Streams.IsTerminal() {
		return usageError("-t needs a terminal on standard input, and this one is not: drop -t (keep -i to pipe input in)")
	}
	pull := image.PullOptions{Policy: spec.PullPolicy(o.Pull), Insecure: o.Insecure, StallTimeout: o.PullTimeout,
		MaxImageSize: o.maxImage, MinFree: o.minFree}
	if !o.Quiet {
		pull.Progress, pull.TTY = o.g.Streams.Err, o.g.Streams.ErrIsTerminal()
	}
	info := sessionInfo{verb: "debug", backend: strings.ToLower(o.backend.reg.Name), target: o.target.String(), image: o.Image,
		profile: o.Profile, command: o.Command, tty: o.container.TTY, record: o.Record}
	return o.g.runSession(ctx, info, func(ctx context.Context, s Streams) error {
		d, err := capability[runtime.Debugger](o.g, o.backend, o.target, "debug", o.detach, pull)
		if err != nil {
			return err
		}
		return d.Debug(ctx, o.target, o.container, s)
	})
}

// parseDetachKeys parses Docker's detach-key syntax: "ctrl-p,ctrl-q", "a".
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return []byte{}, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@', c == '[', c == '\\', c == ']', c == '^', c == '_':
				out = append(out, c-'@')
			default:
				return nil, usageError("--detach-keys %q: unknown key %q", s, k)
			}
		default:
			return nil, usageError("--detach-keys %q: use keys like ctrl-p,ctrl-q", s)
		}
	}
	return out, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
