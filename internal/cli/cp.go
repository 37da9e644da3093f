package cli

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// CpOptions are the inputs of "ephem cp".
type CpOptions struct {
	g *GlobalOptions

	Src, Dst   string
	Archive    bool
	FollowLink bool

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
  ephem cp docker://web:/etc - | tar -tv`,
		Long: `Copy files and directories, recursively, between a target and this host.
One side is TARGET:PATH with an absolute PATH (pid:4242:/etc/app.yaml,
docker://web:/var/log), the other a local path or "-" for a tar stream on
standard input or output. Modes, times and symbolic links are kept; owners
with -a. Into a directory that exists, the source goes in under its own
name; otherwise DST names it.

Every path inside the target is resolved inside the target's root: a
symbolic link or ".." never reaches a file of the host. A local file is
written under a temporary name and renamed, so none is left half-written.`,
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
	var err error
	if o.backend, err = o.g.backends.lookup(o.target); err != nil {
		return err
	}
	return checkOwnFlags(o.flags, o.backend, o.target)
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
	if o.out {
		if o.local == "-" {
			return c.CopyFrom(ctx, o.target, o.remote, opts, o.g.Streams.Out)
		}
		return o.copyOut(ctx, c, opts)
	}
	if o.local == "-" {
		return c.CopyTo(ctx, o.target, o.remote, opts, o.g.Streams.In)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeTar(ctx, o.local, o.FollowLink, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err = c.CopyTo(ctx, o.target, o.remote, opts, pr)
	pr.CloseWithError(errCopyEnded)
	if werr := <-done; werr != nil && !errors.Is(werr, errCopyEnded) {
		return werr // the local side's failure explains the other's
	}
	return err
}

// errCopyEnded stops the side of a pipe whose other side has returned.
var errCopyEnded = errors.New("the copy ended")

// copyOut streams the target's files into a local unpacking.
func (o *CpOptions) copyOut(ctx context.Context, c runtime.Copier, opts runtime.CopyOptions) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := c.CopyFrom(ctx, o.target, o.remote, opts, pw)
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
