package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/sys/unix"
)

// Options configure an Engine.
type Options struct {
	// Images is the image cache the debug container's root comes from;
	// nil: the cache in CacheDir, opened by Debug.
	Images *image.Store
	// CacheDir is the image cache's directory when Images is nil.
	CacheDir string
	// Pull says how images are fetched (policy from the spec wins).
	Pull image.PullOptions
	// DetachKeys end the attachment without ending a TTY session's
	// command (default ctrl-p,ctrl-q).
	DetachKeys []byte
	// GracePeriod is how long an interrupted command may take to exit
	// before the session is killed.
	GracePeriod time.Duration
	// Log receives warnings and status lines (nil: discarded).
	Log io.Writer
}

// Engine is the local backend.
type Engine struct {
	opts Options
}

var (
	_ runtime.Debugger = (*Engine)(nil)
	_ runtime.Lister   = (*Engine)(nil)
	_ runtime.Attacher = (*Engine)(nil)
	_ runtime.Cleaner  = (*Engine)(nil)
)

// New returns the local engine.
func New(o Options) *Engine {
	if o.GracePeriod == 0 {
		o.GracePeriod = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return &Engine{opts: o}
}

// CheckPrivileges fails unless ephem runs as root, which joining another
// process's namespaces needs.
func CheckPrivileges() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the local engine joins other processes' namespaces and needs root: run ephem as root", runtime.ErrPermission)
	}
	return nil
}

// Debug implements runtime.Debugger.
func (e *Engine) Debug(ctx context.Context, ref target.Ref, c spec.Container, streams session.Streams) error {
	if err := e.checkCaller(ctx, ref); err != nil { // root, or rootless (rootless.go)
		return err
	}
	images := e.opts.Images
	if images == nil {
		var err error
		if images, err = image.Open(e.opts.CacheDir); err != nil {
			return fmt.Errorf("opening the image cache: %w", err)
		}
	}
	tm := runtime.NewTimer(e.opts.Log)
	defer tm.Report()
	if err := checkOverlay(ctx); err != nil {
		return err
	}
	if c.TTY {
		_, _ = ListSessions() // prune records of sessions that ended detached
	}
	tm.Mark("preflight")
	proc, err := e.resolveAny(ctx, ref) // a stopped target too (stopped.go)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", ref, err)
	}
	report := runtime.ReportFrom(ctx)
	report.SetResolvedTarget(resolvedName(proc))
	pull := e.opts.Pull
	if c.PullPolicy != "" {
		pull.Policy = c.PullPolicy
	}
	if proc.PID == 1 && !c.Security.Privileged {
		return fmt.Errorf("%w: process 1 is the host's init: a debug container in its namespaces is one in the host's; pass --profile sysadmin to mean it", runtime.ErrInvalidSpec)
	}
	var env []string
	if c.EnvFromTarget && proc.Stopped != nil {
		return fmt.Errorf("%w: --env-from-target: %s runs nothing, so it has no environment to read", runtime.ErrInvalidSpec, proc.Description)
	}
	if c.EnvFromTarget {
		// Read on the host, before anything starts, like the files below.
		if env, err = targetEnv(proc.PID); err != nil {
			return fmt.Errorf("%s: %w", proc.Description, err)
		}
	}
	stopped, err := e.prepareStopped(ctx, images, pull, proc) // nil unless it runs nothing (stopped.go)
	if err != nil {
		return err
	}
	tm.Mark("resolve")
	img, err := images.Ensure(ctx, c.Image, pull)
	if err != nil {
		return fmt.Errorf("getting image %s: %w", c.Image, err)
	}
	report.SetImageDigest(img.Digest.String())
	tm.Mark("image")
	cfg, err := containerConfig(c, img, env)
	if err != nil {
		return err
	}
	cfg.Files = readTargetFiles(proc.PID)
	var t *openTarget
	if stopped != nil {
		t, cfg.Target = &openTarget{pidfd: -1}, stopped
	} else if t, err = open(proc.PID, c.SharePID); err != nil {
		return fmt.Errorf("opening %s: %w", proc.Description, err)
	}
	defer t.close()
	if rootless() {
		if err := t.rootlessOnly(e.opts.Log); err != nil {
			return err
		}
	}
	if c.TTY {
		if rows, cols, ok := session.Size(streams.Out); ok {
			cfg.Rows, cfg.Cols = rows, cols
		}
	}
	tm.Mark("open")
	s, err := e.start(ctx, t, images, img, cfg, c, streams)
	if err != nil {
		return err
	}
	s.timer = tm
	tm.Mark("spawn")
	if s.id != "" {
		report.SetSessionID(s.id)
		desc := Session{ID: s.id, Target: ref.String(), Image: c.Image, Command: cfg.Argv, Started: time.Now(), Relay: s.cmd.Process.Pid}
		if err := writeSession(desc); err != nil {
			fmt.Fprintf(e.opts.Log, "warning: recording session %s: %v\n", s.id, err)
		}
	}
	err = s.relay(ctx, t.watched(), proc.Description)
	if s.id != "" && !s.detached() {
		removeSession(s.id)
	}
	return err
}

// resolve finds the host process ref names, saying on the log which
// container a bare NAME was found to be, and when the runtime did not
// answer and /proc served instead. A target that runs nothing is an error.
func (e *Engine) resolve(ctx context.Context, ref target.Ref) (target.Process, error) {
	proc, err := e.resolveAny(ctx, ref)
	if err == nil && proc.Stopped != nil {
		return proc, notRunning(proc) // only debug and cp take one (stopped.go)
	}
	return proc, err
}

// containerConfig translates the spec, the image config and the target's
// environment (with --env-from-target) into init's config.
func containerConfig(c spec.Container, img *image.Image, targetEnv []string) (*initConfig, error) {
	caps, err := capabilities(c.Security)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", runtime.ErrInvalidSpec, err)
	}
	cfg := &initConfig{
		Argv:         c.Argv(img.Config.Entrypoint, img.Config.Cmd),
		Env:          debugEnv(targetEnv, img.Config.Env, c.Env),
		WorkingDir:   img.Config.WorkingDir,
		User:         img.Config.User,
		Caps:         caps,
		Privileged:   c.Security.Privileged,
		NoNewPrivs:   !c.Security.Privileged,
		Seccomp:      c.Security.SeccompRuntimeDefault,
		TTY:          c.TTY,
		Stdin:        c.Stdin,
		RunAsNonRoot: c.Security.RunAsNonRoot != nil && *c.Security.RunAsNonRoot,
	}
	if a := c.Security.AllowPrivilegeEscalation; a != nil {
		cfg.NoNewPrivs = !*a
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	if c.User != "" {
		cfg.User = c.User
	}
	if u := c.Security.RunAsUser; u != nil {
		cfg.User = fmt.Sprint(*u)
		if g := c.Security.RunAsGroup; g != nil {
			cfg.User += fmt.Sprintf(":%d", *g)
		}
	}
	return cfg, nil
}

// start re-executes ephem as the container's init and sends it the config.
func (e *Engine) start(_ context.Context, t *openTarget, images *image.Store, img *image.Image, cfg *initConfig, c spec.Container, streams session.Streams) (*sess, error) {
	for _, l := range img.Layers {
		if strings.ContainsAny(l, ":,") {
			return nil, fmt.Errorf("%w: layer path %q has ':' or ',': move --cache-dir to a plain path", runtime.ErrInvalidSpec, l)
		}
	}
	lower := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		lower[len(lower)-1-i] = l // overlayfs lists the top layer first
	}
	targetFD := -1
	if len(cfg.Target) > 0 {
		fd, err := readOnlyLayers(cfg.Target)
		if err != nil {
			if errors.Is(err, runtime.ErrUnsupported) || errors.Is(err, runtime.ErrOS) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: mounting the target's filesystem: %w", runtime.ErrOS, err)
		}
		targetFD = fd
		defer func() { _ = unix.Close(fd) }()
	}
	host, child, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", runtime.ErrOS, err)
	}
	defer child.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"ephem-init"}
	cmd.Env = []string{
		nsenter.EnvJoin + "=" + t.joinSpec(4),
		nsenter.EnvCtl + "=3",
		nsenter.EnvRootfs + "=" + images.RunDir(),
		nsenter.EnvLower + "=" + strings.Join(lower, ":"),
	}
	if len(cfg.Target) > 0 {
		cmd.Env = append(cmd.Env, stoppedEnv()...) // new namespaces (stopped.go)
	} else if !c.SharePID {
		cmd.Env = append(cmd.Env, nsenter.EnvNewPID+"=1")
	}
	cmd.Env = append(cmd.Env, rootlessEnv()...)
	if ids := t.rootIDs(); ids != "" {
		cmd.Env = append(cmd.Env, nsenter.EnvRootIDs+"="+ids)
	}
	cmd.ExtraFiles = append([]*os.File{child}, t.files...)
	// An interactive session can be detached from and reattached to: init
	// inherits the listening socket ephem attach connects to.
	var id string
	if c.TTY {
		var l *os.File
		var err error
		if id, l, err = listen(); err != nil {
			host.Close()
			return nil, err
		}
		defer l.Close()
		cmd.Env = append(cmd.Env, envAttach+"="+strconv.Itoa(3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, l)
	}
	// init holds the image's layer pins for as long as the session runs,
	// detached or not, so ephem images prune cannot remove its lowerdirs.
	cmd.ExtraFiles = append(cmd.ExtraFiles, images.Pins()...)
	// Streams that are not files are copied by goroutines: do not let an
	// input that never ends keep ephem waiting after the session.
	cmd.WaitDelay = time.Second
	if !c.TTY {
		// The command gets the user's streams directly: no copying.
		cmd.Stdout, cmd.Stderr = streams.Out, streams.Err
		if c.Stdin {
			cmd.Stdin = streams.In
		}
	}
	// No parent-death signal: init ends the session when the control socket
	// closes, unless the user detached, in which case the session outlives
	// this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		host.Close()
		if id != "" {
			removeSession(id)
		}
		return nil, fmt.Errorf("%w: starting the container's init: %w", runtime.ErrOS, err)
	}
	s := &sess{e: e, cmd: cmd, ctl: &conn{f: host}, c: c, streams: streams, id: id}
	if err := s.ctl.sendConfig(cfg, targetFD); err != nil {
		s.abort()
		return nil, s.setupError(fmt.Errorf("%w: %w", runtime.ErrOS, err))
	}
	return s, nil
}

// resolvedName is the target as resolved, for the audit log: "pid 4242
// (docker container web)", or the description alone of a stopped target.
func resolvedName(p target.Process) string {
	if p.PID == 0 {
		return p.Description
	}
	return fmt.Sprintf("pid %d (%s)", p.PID, p.Description)
}
