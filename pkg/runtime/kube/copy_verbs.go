package kube

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

// ephem cp on pods: the tool image's tar runs in a helper debugger
// against the target's root as /proc/PID/root shows it, every path
// resolved there first (scripts.go); the stream passes through ephem,
// which names its top entry and checks what it unpacks into the target.

var _ runtime.Copier = (*Backend)(nil)

// errStreamEnded stops the side of a pipe whose other side has returned.
var errStreamEnded = errors.New("the stream ended")

// CopyFrom implements runtime.Copier.
func (b *Backend) CopyFrom(ctx context.Context, ref target.Ref, p string, o runtime.CopyOptions, w io.Writer) error {
	k, h, p, err := b.copyHelper(ctx, ref, p, true)
	if err != nil {
		return err
	}
	what := "copying " + ref.String() + ":" + p
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var stderr tailBuffer
	done := make(chan error, 1)
	go func() {
		err := k.exec(ectx, h, script(scriptCopyFrom, h, p, flag(o.FollowLink)), nil, pw, &stderr)
		if err != nil {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		} else {
			_ = pw.Close()
		}
		done <- err
	}()
	out := &recordingWriter{w: w}
	rerr := rewriteOut(pr, out, path.Base(p))
	if rerr == nil {
		_, rerr = io.Copy(io.Discard, pr) // the archive's padding
	} else {
		cancel()
	}
	pr.CloseWithError(errStreamEnded)
	eerr := <-done
	switch {
	case out.err != nil:
		return out.err // the local side failed: it explains
	case eerr != nil:
		return k.scriptError(ctx, h, what, eerr, stderr.String())
	case rerr != nil:
		return fmt.Errorf("%w: %s: %w", runtime.ErrOS, what, rerr)
	}
	return nil
}

// CopyTo implements runtime.Copier: a path ending in "/" names a directory
// that must exist.
func (b *Backend) CopyTo(ctx context.Context, ref target.Ref, p string, o runtime.CopyOptions, r io.Reader) error {
	dirOnly := strings.HasSuffix(p, "/")
	k, h, p, err := b.copyHelper(ctx, ref, p, false)
	if err != nil {
		return err
	}
	what := "copying to " + ref.String() + ":" + p
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr tailBuffer
	done := make(chan error, 1)
	go func() {
		argv := script(scriptCopyTo, h, p, flag(dirOnly), flag(o.Archive && h.root))
		err := k.exec(ectx, h, argv, inR, outW, &stderr)
		outW.CloseWithError(io.EOF)
		inR.CloseWithError(errStreamEnded)
		done <- err
	}()
	var werr error
	mode, err := bufio.NewReader(outR).ReadString('\n')
	if err == nil {
		rename, _ := strings.CutPrefix(strings.TrimSpace(mode), "as ")
		if rename == "into" {
			rename = ""
		}
		werr = rewriteIn(r, inW, rename, o.Archive)
		if werr != nil {
			cancel() // do not let tar finish a partial stream
		}
	}
	inW.CloseWithError(werr)
	_, _ = io.Copy(io.Discard, outR)
	eerr := <-done
	if werr != nil && (eerr == nil || !errors.Is(werr, errStreamEnded)) {
		return werr // a bad stream, or the local side failed: it explains
	}
	if eerr != nil {
		return k.scriptError(ctx, h, what, eerr, stderr.String())
	}
	if err != nil {
		return fmt.Errorf("%w: %s: helper debug container %s did not answer", runtime.ErrOS, what, h.name)
	}
	return nil
}

// cleanTargetPath checks that p is an absolute path and cleans it.
func cleanTargetPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", usage("%q: give an absolute path inside the target", p)
	}
	return path.Clean(p), nil
}

// script is the argv running sh script s in h with args.
func script(s string, h *helper, args ...string) []string {
	return append([]string{"sh", "-c", s, "ephem", h.targetContainerID()}, args...)
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// rewriteOut copies the tar stream tar made of "./NAME" to w with the top
// entry named base and the owners' names (the helper's, not the
// target's) left out.
func rewriteOut(r io.Reader, w io.Writer, base string) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	rename := func(n string) string {
		n = strings.TrimPrefix(n, "./")
		if _, rest, ok := strings.Cut(n, "/"); ok {
			return base + "/" + rest
		}
		return base
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar stream: %w", err)
		}
		h.Name = rename(h.Name)
		if h.Typeflag == tar.TypeLink {
			h.Linkname = rename(h.Linkname)
		}
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(h.Name, "/") {
			h.Name += "/"
		}
		h.Uname, h.Gname, h.Format = "", "", tar.FormatPAX
		h.ModTime, h.AccessTime, h.ChangeTime = h.ModTime.Truncate(time.Second), time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing the tar stream: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil { //nolint:gosec // G110: a tar stream, not compressed; each entry as long as its header says
			return fmt.Errorf("copying %s: %w", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the tar stream: %w", err)
	}
	return nil
}

// rewriteIn copies the local tar stream r to w for tar -x in the target,
// refusing entries that would land outside the destination: absolute
// names, "..", names under a link the stream made, device files. rename,
// if set, replaces the top entry's name; without keepOwners every entry
// belongs to the target's root.
func rewriteIn(r io.Reader, w io.Writer, rename string, keepOwners bool) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	top := ""
	links := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: reading the tar stream: %w", runtime.ErrUsage, err)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeChar, tar.TypeBlock:
			return fmt.Errorf("%w: the tar stream holds device %s: ephem cp does not create devices in a target", runtime.ErrUsage, h.Name)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(name, "/")
		switch {
		case top == "":
			top = first
		case first != top && rename != "":
			return fmt.Errorf("%w: the tar stream holds more than one top entry (%s, %s): copy into a directory", runtime.ErrUsage, top, first)
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if links[d] {
				return fmt.Errorf("%w: the tar stream writes %s through its own link %s", runtime.ErrUsage, h.Name, d)
			}
		}
		if h.Typeflag == tar.TypeSymlink {
			links[name] = true
		}
		if h.Typeflag == tar.TypeLink {
			if h.Linkname, err = entryName(h.Linkname); err != nil {
				return err
			}
			if rename != "" && (h.Linkname == top || strings.HasPrefix(h.Linkname, top+"/")) {
				h.Linkname = rename + strings.TrimPrefix(h.Linkname, top)
			}
		}
		if rename != "" {
			name = rename + strings.TrimPrefix(name, top)
		}
		if h.Typeflag == tar.TypeDir {
			name += "/"
		}
		h.Name, h.Uname, h.Gname, h.PAXRecords, h.Format = name, "", "", nil, tar.FormatUnknown
		h.ModTime, h.AccessTime, h.ChangeTime = h.ModTime.Truncate(time.Second), time.Time{}, time.Time{}
		if !keepOwners {
			h.Uid, h.Gid = 0, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%w: writing the tar stream: %w", runtime.ErrOS, err)
		}
		if _, err := io.Copy(tw, tr); err != nil { //nolint:gosec // G110: a tar stream, not compressed; each entry as long as its header says
			return fmt.Errorf("copying %s: %w", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("%w: writing the tar stream: %w", runtime.ErrOS, err)
	}
	return nil
}

// entryName cleans a tar entry's name, refusing one that leaves the
// directory it is unpacked in.
func entryName(n string) (string, error) {
	c := path.Clean(strings.TrimPrefix(n, "./"))
	if path.IsAbs(n) || c == ".." || strings.HasPrefix(c, "../") || c == "." {
		return "", fmt.Errorf("%w: the tar stream holds %q, which leaves the destination", runtime.ErrUsage, n)
	}
	return c, nil
}

// recordingWriter remembers the first error of w.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// tailBuffer keeps the last 4 KiB written to it (a command's stderr).
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// copyHelper cleans the target path p (refusing the root itself when
// refuseRoot: nothing is added to the pod then) and returns the call and
// the helper debug container cp runs its scripts in.
func (b *Backend) copyHelper(ctx context.Context, ref target.Ref, p string, refuseRoot bool) (*call, *helper, string, error) {
	p, err := cleanTargetPath(p)
	if err != nil {
		return nil, nil, "", err
	}
	if refuseRoot && p == "/" {
		return nil, nil, "", usage("copying the whole root: copy its directories one by one")
	}
	k, err := b.callFor(ref)
	if err != nil {
		return nil, nil, "", err
	}
	h, err := k.helperFor(ctx, ref, "cp", "")
	if err != nil {
		return nil, nil, "", err
	}
	return k, h, p, nil
}
