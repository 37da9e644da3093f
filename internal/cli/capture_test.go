package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ephem-dev/ephem/internal/cli"
	"github.com/ephem-dev/ephem/pkg/pcap"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// A backend with only Capturer, under test-capture://, runs ephem capture
// through the real CLI: what the verb asks of any backend, and what it
// does with the stream.

func init() {
	runtime.Register(runtime.Registration{Name: "test-capture", NewConfig: func() runtime.Config { return captureConfig{} },
		Schemes: []target.Scheme{{Name: "test-capture", Prefixes: []string{"test-capture://"}, Example: "test-capture://NAME", Parse: target.ParseContainer}}})
}

type captureConfig struct{}

func (captureConfig) AddFlags(string, *pflag.FlagSet) {}

func (captureConfig) New(runtime.Env) (runtime.Backend, error) { return capturer{}, nil }

type capturer struct{}

// Capture writes three packets, then ends as the filter's first word says:
// "fail" before writing anything, "gone" with the target gone, "cancel"
// with ctx's error; otherwise it returns nil.
func (capturer) Capture(_ context.Context, t target.Ref, o runtime.CaptureOptions, w io.Writer) error {
	record("capture %s %+v", t.Name, o)
	mode, _, _ := strings.Cut(o.Filter, " ")
	if mode == "fail" {
		return fmt.Errorf("%w: the fake refuses the filter", runtime.ErrUsage)
	}
	pw, err := pcap.NewWriter(w, pcap.LinkEthernet, 65535)
	if err != nil {
		return err
	}
	for i := range 3 {
		if err := pw.WritePacket(time.Unix(1e9, 0), 60, nil, bytes.Repeat([]byte{byte(i)}, 60)); err != nil {
			return err
		}
	}
	switch mode {
	case "gone":
		return fmt.Errorf("%w: the target exited", runtime.ErrTargetGone)
	case "cancel":
		return context.Canceled
	}
	return nil
}

// pcapPackets counts the records of a pcap stream.
func pcapPackets(t *testing.T, b []byte) int64 {
	t.Helper()
	c := &pcap.Counter{W: io.Discard}
	_, _ = c.Write(b)
	if len(b) < 24 {
		t.Fatalf("no pcap header in %d bytes", len(b))
	}
	return c.Packets()
}

func TestCaptureToFileAndStdout(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "web.pcap")
	code, out, errOut := execute("capture", "test-capture://web", "-w", file, "-c", "5", "--duration", "3s", "-i", "lo", "udp", "port", "5353")
	if want := "capture web {Interface:lo Filter:udp port 5353 Count:5 Duration:3s}"; code != 0 || out != "" || errOut != "" || calls() != want {
		t.Errorf("capture -w: exit %d out %q err %q, calls %q, want %q", code, out, errOut, calls(), want)
	}
	b, err := os.ReadFile(file)
	if err != nil || pcapPackets(t, b) != 3 {
		t.Errorf("the file: %v, want 3 packets", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want the file alone", len(ents))
	}
	for _, args := range [][]string{{"-w", "-"}, {}} {
		code, out, errOut = execute(append([]string{"capture", "test-capture://web"}, args...)...)
		if code != 0 || errOut != "" || pcapPackets(t, []byte(out)) != 3 || calls() != "capture web {Interface:any Filter: Count:0 Duration:0s}" {
			t.Errorf("capture %v: exit %d err %q calls %q", args, code, errOut, calls())
		}
	}
}

func TestCaptureEnds(t *testing.T) {
	dir := t.TempDir()
	// Cut short (Ctrl-C): exit 0 and the file kept, whole.
	file := filepath.Join(dir, "a.pcap")
	if code, _, errOut := execute("capture", "test-capture://web", "-w", file, "cancel"); code != 0 || errOut != "" {
		t.Errorf("an interrupted capture: exit %d %q, want 0", code, errOut)
	}
	if b, err := os.ReadFile(file); err != nil || pcapPackets(t, b) != 3 {
		t.Errorf("an interrupted capture's file: %v", err)
	}
	// The target gone: its code, and the packets so far kept.
	file = filepath.Join(dir, "b.pcap")
	if code, _, errOut := execute("capture", "test-capture://web", "-w", file, "gone"); code != 75 || !strings.Contains(errOut, "the target exited") {
		t.Errorf("a target gone: exit %d %q, want 75", code, errOut)
	}
	if b, err := os.ReadFile(file); err != nil || pcapPackets(t, b) != 3 {
		t.Errorf("a target gone: the file: %v", err)
	}
	// A failure before the first byte leaves nothing behind.
	file = filepath.Join(dir, "c.pcap")
	if code, _, errOut := execute("capture", "test-capture://web", "-w", file, "fail"); code != 64 || errOut != "ephem: the fake refuses the filter\n" {
		t.Errorf("a refused filter: exit %d %q, want 64", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("the directory holds %d entries, want a.pcap and b.pcap", len(ents))
	}
}

func TestCaptureUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"capture"}, 64, "capture needs a target"},
		{[]string{"capture", "test-capture://web", "-c", "-1"}, 64, "-c -1"},
		{[]string{"capture", "test-capture://web", "--duration", "-1s"}, 64, "--duration -1s"},
		{[]string{"capture", "test-capture://web", "-i", ""}, 64, `-i ""`},
		{[]string{"capture", "test-capture://web", "--bogus"}, 64, "unknown flag: --bogus"},
		{[]string{"capture", "test-capture://web", "-w", filepath.Join(dir, "no/such/dir/x.pcap")}, 64, "no such file or directory"},
		{[]string{"capture", "test-capture://web", "-w", dir}, 64, "is a directory: name a file in it"},
		{[]string{"capture", "test-noattach://web", "-w", "-"}, 69, "test-noattach:// targets do not support capture yet"},
	} {
		code, _, errOut := execute(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d %q, want %d and one line saying %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused captures left %d entries", len(ents))
	}
}

// TestCaptureTerminal: a terminal as standard output gets no pcap unless
// -w - asks for it; a terminal as stderr shows the packet count.
func TestCaptureTerminal(t *testing.T) {
	ptmx, tty := openPTY(t)
	var errOut bytes.Buffer
	code := cli.Execute(context.Background(), []string{"capture", "test-capture://web"}, cli.Streams{In: strings.NewReader(""), Out: tty, Err: &errOut})
	if code != 64 || !strings.Contains(errOut.String(), "standard output is a terminal: write the capture to a file (-w FILE)") {
		t.Errorf("stdout a terminal: exit %d %q, want 64", code, errOut.String())
	}
	var out bytes.Buffer
	done := make(chan string)
	go func() {
		b := make([]byte, 4096)
		n, _ := ptmx.Read(b)
		done <- string(b[:n])
	}()
	code = cli.Execute(context.Background(), []string{"capture", "test-capture://web"}, cli.Streams{In: strings.NewReader(""), Out: &out, Err: tty})
	if code != 0 || pcapPackets(t, out.Bytes()) != 3 {
		t.Errorf("stderr a terminal: exit %d, %d bytes", code, out.Len())
	}
	select {
	case s := <-done:
		if !strings.Contains(s, "3 packets captured") {
			t.Errorf("the terminal shows %q, want the count", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("nothing on the terminal")
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ptmx.Close() })
	var unlock int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, ptmx.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tty.Close() })
	return ptmx, tty
}
