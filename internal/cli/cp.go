package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// CpOptions are the inputs of "ephem cp".
type CpOptions struct {
	g *GlobalOptions

	Src, Dst   string
	Archive    bool
	FollowLink bool
	Container  string

	flags   *pflag.FlagSet
	target  target.Ref
	backend backend
	remote  string // the path inside the target
	local   string // the local path, or "-" for a tar stream
	out     bool   // from the target to the local side
}

func newCpCmd(g *GlobalOptions) *cobra.Command {
	o := &CpOptions{g: g}
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files between a target and the local file system (nothing needed in the target)",
		Example: `  ephem cp pid:4242:/etc/app.yaml ./app.yaml
  ephem cp docker://web:/var/log ./logs
  ephem cp ./fix.conf docker://web:/etc/nginx/conf.d/
  ephem cp docker://web:/etc - | tar -tv
  ephem cp pod/web:/var/log ./logs -c nginx
  ephem cp ./fix.conf deploy/web:/tmp/ -n shop`,
		Long: `Copy files and directories, recursively, between a target and this host.
One side is TARGET:PATH with an absolute PATH (pid:4242:/etc/app.yaml,
docker://web:/var/log), the other a local path or "-" for a tar stream on
standard input or output. Modes, times and symbolic links are kept; owners
with -a. Into a directory that exists, the source goes in under its own
name; otherwise DST names it.

Every path inside the target is resolved inside the target's root: a
symbolic link or ".." never reaches a file of the host. A local file is
written under a temporary name and renamed, so none is left half-written.
On a terminal, a copy that takes more than a second shows its progress.

Pods and workloads (pod/NAME, deploy/NAME, k8s://NS/POD) need nothing in
the target either: the tool image's tar ($EPHEM_IMAGE, default
busybox:latest) runs in a helper debug container beside the target (-c
CONTAINER, default the pod's default container) that later cp, ns and
capture reuse, since ephemeral containers cannot be removed. It runs as
the target's user when the target runs as non-root.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVarP(&o.Archive, "archive", "a", false, "keep owners (uid and gid)")
	cmd.Flags().BoolVarP(&o.FollowLink, "follow-link", "L", false, "copy what a symbolic link as SRC names, not the link")
	cmd.Flags().StringVarP(&o.Container, "container", "c", "", "pods: the container whose files to copy (default: the pod's default container)")
	g.backends.addFlags(runtime.VerbCopy, cmd.Flags())
	o.flags = cmd.Flags()
	return cmd
}

// Complete fills the options from the arguments.
func (o *CpOptions) Complete(args []string) error {
	if len(args) != 2 {
		return usageError("cp needs a source and a destination: ephem cp TARGET:PATH LOCAL, or ephem cp LOCAL TARGET:PATH")
	}
	o.Src, o.Dst = args[0], args[1]
	return nil
}

// Validate checks the options without I/O: exactly one side is TARGET:PATH.
func (o *CpOptions) Validate() error {
	srcRef, srcPath, srcRemote := splitRemote(o.Src)
	dstRef, dstPath, dstRemote := splitRemote(o.Dst)
	switch {
	case srcRemote && dstRemote:
		return usageError("both %q and %q name a target: one side of cp is a local path or -", o.Src, o.Dst)
	case srcRemote:
		o.target, o.remote, o.local, o.out = srcRef, srcPath, o.Dst, true
	case dstRemote:
		o.target, o.remote, o.local = dstRef, dstPath, o.Src
	default:
		return usageError("neither %q nor %q is TARGET:PATH (such as pid:4242:/etc/app.yaml or docker://web:/var/log): %s",
			o.Src, o.Dst, target.Supported())
	}
	if o.local == "" {
		return usageError("the local path is empty: give a path, or - for a tar stream")
	}
	if err := o.setContainer(); err != nil {
		return err
	}
	var err error
	if o.backend, err = o.g.backends.lookup(o.target); err != nil {
		return err
	}
	return checkOwnFlags(o.flags, o.backend, o.target)
}

// setContainer applies -c to a pod or workload target.
func (o *CpOptions) setContainer() error {
	if o.Container == "" {
		return nil
	}
	switch o.target.Scheme {
	case target.SchemePod, target.SchemeDeployment, target.SchemeStatefulSet, target.SchemeDaemonSet,
		target.SchemeReplicaSet, target.SchemeJob:
	default:
		return usageError("-c names a container of a pod: %s is not a pod or workload", o.target)
	}
	if o.target.Container != "" && o.target.Container != o.Container {
		return usageError("%s names container %s but -c says %s", o.target, o.target.Container, o.Container)
	}
	o.target.Container = o.Container
	return nil
}

// splitRemote splits TARGET:PATH at the first ":/" whose left side parses
// as a target: "pid:4242:/etc/x" and "docker://web:/var/log" both split
// after the target, and a path may hold ":/" itself. A bare NAME ("web:/x")
// is tried only when no prefixed form fits, so "docker" in
// "docker://web:/x" is not taken for one.
func splitRemote(s string) (target.Ref, string, bool) {
	for _, bare := range []bool{false, true} {
		for i := 0; ; i++ {
			j := strings.Index(s[i:], ":/")
			if j < 0 {
				break
			}
			i += j
			if ref, err := target.Parse(s[:i]); err == nil && (ref.Scheme == target.SchemeName) == bare {
				return ref, s[i+1:], true
			}
		}
	}
	return target.Ref{}, "", false
}

// Run copies through the target's backend; this side reads or writes the
// local files.
func (o *CpOptions) Run(ctx context.Context) error {
	c, err := capability[runtime.Copier](o.g, o.backend, o.target, "cp", nil, image.PullOptions{})
	if err != nil {
		return err
	}
	opts := runtime.CopyOptions{Archive: o.Archive, FollowLink: o.FollowLink}
	p := startProgress(o.g.Streams.Err)
	defer p.finish()
	if o.out {
		if o.local == "-" {
			return c.CopyFrom(ctx, o.target, o.remote, opts, p.writer(o.g.Streams.Out))
		}
		return o.copyOut(ctx, c, opts, p)
	}
	if o.local == "-" {
		return c.CopyTo(ctx, o.target, o.remote, opts, p.reader(o.g.Streams.In))
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeTar(ctx, o.local, o.FollowLink, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err = c.CopyTo(ctx, o.target, o.remote, opts, p.reader(pr))
	pr.CloseWithError(errCopyEnded)
	if werr := <-done; werr != nil && !errors.Is(werr, errCopyEnded) {
		return werr // the local side's failure explains the other's
	}
	return err
}

// errCopyEnded stops the side of a pipe whose other side has returned.
var errCopyEnded = errors.New("the copy ended")

// copyOut streams the target's files into a local unpacking.
func (o *CpOptions) copyOut(ctx context.Context, c runtime.Copier, opts runtime.CopyOptions, p *progress) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := c.CopyFrom(ctx, o.target, o.remote, opts, p.writer(pw))
		pw.CloseWithError(err)
		done <- err
	}()
	err := extractTar(ctx, pr, o.local, path.Base(o.remote), o.Archive)
	pr.CloseWithError(errCopyEnded)
	if rerr := <-done; rerr != nil && !errors.Is(rerr, errCopyEnded) {
		return rerr // the target side's failure explains the other's
	}
	return err
}

// progress counts the bytes of a copy and, when stderr is a terminal,
// shows them with the rate on one updating line once the copy has taken
// longer than progressAfter. A nil *progress counts nothing.
type progress struct {
	w     io.Writer
	n     atomic.Int64
	start time.Time
	stop  chan struct{}
	done  chan struct{}
}

// progressAfter and progressEvery pace the progress line.
const (
	progressAfter = time.Second
	progressEvery = 250 * time.Millisecond
)

// startProgress returns a progress shown on w, or nil when w is not a
// terminal.
func startProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: w, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *progress) run() {
	defer close(p.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	shown := false
	for {
		select {
		case <-p.stop:
			if shown {
				p.show()
				fmt.Fprintln(p.w)
			}
			return
		case <-t.C:
			if time.Since(p.start) >= progressAfter {
				p.show()
				shown = true
			}
		}
	}
}

// show rewrites the progress line.
func (p *progress) show() {
	n, secs := p.n.Load(), time.Since(p.start).Seconds()
	fmt.Fprintf(p.w, "\r%s copied, %s/s\x1b[K", humanBytes(n), humanBytes(int64(float64(n)/secs)))
}

// finish stops the line, ending it if it was shown.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
}

// reader counts what is read from r.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return readerFunc(func(b []byte) (int, error) {
		n, err := r.Read(b)
		p.n.Add(int64(n))
		return n, err
	})
}

// writer counts what is written to w.
func (p *progress) writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return writerFunc(func(b []byte) (int, error) {
		n, err := w.Write(b)
		p.n.Add(int64(n))
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
