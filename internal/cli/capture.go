package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/pcap"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// countInterval is how often the live packet count is redrawn.
const countInterval = 250 * time.Millisecond

// CaptureOptions are the inputs of "ephem capture".
type CaptureOptions struct {
	g *GlobalOptions

	TargetArg string
	Write     string
	Count     int
	Duration  time.Duration
	Interface string
	Filter    string

	flags   *pflag.FlagSet
	target  target.Ref
	backend backend
	stdout  bool // the pcap goes to standard output
}

func newCaptureCmd(g *GlobalOptions) *cobra.Command {
	o := &CaptureOptions{g: g}
	cmd := &cobra.Command{
		Use:   "capture TARGET [-w FILE|-] [-c N] [--duration D] [-i IFACE|any] [FILTER...]",
		Short: "Capture a target's packets as pcap, for tcpdump and Wireshark",
		Example: `  ephem capture pid:4242 -w web.pcap port 80
  ephem capture docker://web -w - udp port 53 | tcpdump -n -r -
  ephem capture pod/web -w - port 80 | wireshark -k -i -
  ephem capture pid:4242 -i lo -c 100 --duration 30s -w lo.pcap 'tcp and not port 22'`,
		Long: `Capture the packets of a target's network namespace and write them as pcap,
which tcpdump -r and Wireshark read. The words after the target are a
filter in tcpdump's syntax, run in the kernel. Locally the host's libpcap
compiles it when installed (Debian: libpcap0.8), so all of tcpdump's syntax
works; without libpcap only these compile:
  [ip|ip6] [src|dst] host ADDR, [src|dst] net CIDR, [tcp|udp] [src|dst] port N,
  tcp and udp, joined with and/&&, or/||, not/! and parentheses;
and the rest is refused (exit 64). On Kubernetes the tool image's tcpdump
compiles it.

-w FILE writes FILE (a temporary name in its directory until the capture
ends, then renamed; a capture cut short is kept, complete up to its last
packet); -w - or a standard output that is not a terminal gets the stream,
each packet as it comes. -i names an interface of the target (default any,
every interface, with Linux cooked headers). Ctrl-C, -c N packets or
--duration D end the capture with exit 0. On a terminal, stderr shows a
live packet count.

Locally no image is pulled and no container started: ephem opens a packet
socket in the target's network namespace itself: as root, or as the user
who owns the target's user namespace (rootless podman, unshare --user). On Kubernetes an
idle ephemeral container with the netadmin profile (reused by later captures)
runs tcpdump from the tool image ($EPHEM_IMAGE or the default image).`,
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
	f := cmd.Flags()
	f.StringVarP(&o.Write, "write", "w", "", `write the pcap to FILE ("-": standard output)`)
	f.IntVarP(&o.Count, "count", "c", 0, "stop after N packets (0: no limit)")
	f.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: no limit)")
	f.StringVarP(&o.Interface, "interface", "i", "any", `the target's interface to capture on ("any": all)`)
	g.backends.addFlags(runtime.VerbCapture, f)
	o.flags = f
	return cmd
}

// Complete fills the options from the arguments.
func (o *CaptureOptions) Complete(args []string) error {
	if len(args) < 1 {
		return usageError("capture needs a target: ephem capture TARGET [-w FILE|-] [FILTER...]; %s", target.Supported())
	}
	o.TargetArg, o.Filter = args[0], strings.Join(args[1:], " ")
	return nil
}

// Validate checks the options without I/O but for asking whether
// standard output is a terminal.
func (o *CaptureOptions) Validate() error {
	switch {
	case o.Count < 0:
		return usageError("-c %d: the count is a number of packets, 0 for no limit", o.Count)
	case o.Duration < 0:
		return usageError("--duration %s: the duration is positive, 0 for no limit", o.Duration)
	case o.Interface == "":
		return usageError(`-i "": name an interface of the target, or any`)
	case o.Write == "" && isTerminal(o.g.Streams.Out):
		return usageError("standard output is a terminal: write the capture to a file (-w FILE) or pipe it (-w - | tcpdump -r -)")
	}
	o.stdout = o.Write == "" || o.Write == "-"
	var err error
	o.target, o.backend, err = o.g.backends.forTarget(o.TargetArg, o.flags)
	return err
}

// Run captures through the target's backend into the file or stdout.
func (o *CaptureOptions) Run(ctx context.Context) error {
	g := o.g
	var status *statusLine
	if isTerminal(o.g.Streams.Err) {
		// The backend's lines and the live count share the terminal.
		status = &statusLine{w: o.g.Streams.Err}
		shared := *o.g
		shared.Streams.Err = status
		g = &shared
	}
	c, err := capability[runtime.Capturer](g, o.backend, o.target, "capture", nil, image.PullOptions{})
	if err != nil {
		return err
	}
	opts := runtime.CaptureOptions{Interface: o.Interface, Filter: o.Filter, Count: o.Count, Duration: o.Duration}
	if o.stdout {
		return o.capture(ctx, c, opts, o.g.Streams.Out, status)
	}
	out, err := newPcapFile(o.Write)
	if err != nil {
		return err
	}
	err = o.capture(ctx, c, opts, out.f, status)
	if ferr := out.finish(); err == nil {
		err = ferr
	}
	return err
}

// capture runs the capture into w, counting packets on status when there
// is one. The end of ctx, which Ctrl-C brings, is a normal end.
func (o *CaptureOptions) capture(ctx context.Context, c runtime.Capturer, opts runtime.CaptureOptions, w io.Writer, status *statusLine) error {
	counter := &pcap.Counter{W: w}
	var wg sync.WaitGroup
	done := make(chan struct{})
	if status != nil {
		wg.Go(func() { status.count(counter, done) })
	}
	err := c.Capture(ctx, o.target, opts, counter)
	close(done)
	wg.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// statusLine is a terminal whose last line is a live packet count: the
// lines written to it go above the count, which is redrawn below them.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	shown string
}

// Write implements io.Writer: the count is cleared, p written, and the
// count drawn again.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown != "" {
		fmt.Fprint(s.w, "\r\033[K")
	}
	n, err := s.w.Write(p)
	if s.shown != "" && bytes.HasSuffix(p, []byte("\n")) {
		fmt.Fprint(s.w, s.shown)
	}
	return n, err
}

func (s *statusLine) show(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shown = line
	fmt.Fprint(s.w, "\r"+line)
}

// count redraws the packet count until done, then ends its line.
func (s *statusLine) count(c *pcap.Counter, done <-chan struct{}) {
	t := time.NewTicker(countInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.show(packets(c.Packets()))
		case <-done:
			s.show(packets(c.Packets()) + "\n")
			s.mu.Lock()
			s.shown = ""
			s.mu.Unlock()
			return
		}
	}
}

// packets says how many packets were captured.
func packets(n int64) string {
	if n == 1 {
		return "1 packet captured"
	}
	return fmt.Sprintf("%d packets captured", n)
}

// pcapFile is -w FILE: a temporary file beside FILE, renamed to it at the
// end if the capture wrote anything, removed otherwise.
type pcapFile struct {
	f    *os.File
	name string
}

func newPcapFile(name string) (*pcapFile, error) {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return nil, usageError("-w %s is a directory: name a file in it", name)
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return nil, localError("writing", name, err)
	}
	return &pcapFile{f: f, name: name}, nil
}

// finish closes the file and renames it into place, or removes it when
// the capture failed before its header.
func (p *pcapFile) finish() error {
	fi, serr := p.f.Stat()
	cerr := p.f.Close()
	if serr != nil || cerr != nil || fi.Size() == 0 {
		_ = os.Remove(p.f.Name())
		if err := errors.Join(serr, cerr); err != nil {
			return localError("writing", p.name, err)
		}
		return nil
	}
	if err := os.Rename(p.f.Name(), p.name); err != nil {
		_ = os.Remove(p.f.Name())
		return localError("writing", p.name, err)
	}
	return nil
}

// isTerminal says whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
