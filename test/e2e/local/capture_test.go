package local_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// capture is a running "ephem capture".
type capture struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

// startCapture runs ephem capture and waits until its socket is bound (the
// "capturing on" line).
func startCapture(t *testing.T, f *fixture, args ...string) *capture {
	t.Helper()
	c := &capture{cmd: exec.Command(f.bin, append([]string{"capture"}, args...)...), done: make(chan struct{})}
	c.cmd.Stdout = &c.stdout
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting ephem capture: %v", err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	started := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "ephem: capturing on ") {
				close(started)
			}
		}
		_ = c.cmd.Wait()
	}()
	select {
	case <-started:
	case <-c.done:
		t.Fatalf("ephem capture %v ended before capturing: %s", args, c.errText())
	case <-time.After(30 * time.Second):
		t.Fatalf("ephem capture %v did not start capturing within 30s: %s", args, c.errText())
	}
	return c
}

func (c *capture) errText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// wait waits for the capture to end by itself (or after sig, when not 0)
// and returns its exit code, failing t after 15s.
func (c *capture) wait(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if sig != 0 {
		if err := c.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(15 * time.Second):
		t.Fatalf("ephem capture did not end within 15s: %s", c.errText())
	}
	return -1
}

// readPcap reads a pcap file (or, with "-", data) with Debian's tcpdump,
// with an optional filter of tcpdump's own, and returns its header line
// and one line per packet.
func readPcap(t *testing.T, file string, data []byte, filter ...string) (string, []string) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("reading captures back needs Debian's tcpdump: %v", err)
	}
	cmd := exec.Command("tcpdump", append([]string{"-n", "-r", file}, filter...)...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tcpdump -r %s: %v: %s", file, err, errOut.String())
	}
	var lines []string
	for l := range strings.Lines(out.String()) {
		lines = append(lines, strings.TrimSpace(l))
	}
	return strings.TrimSpace(errOut.String()), lines
}

// traffic sends n UDP datagrams to 127.0.0.1:5353 (where udpEcho answers)
// and makes n HTTP requests to 127.0.0.1:80, inside pid's network
// namespace; with udp false, the requests only.
func traffic(t *testing.T, pid, n int, udp bool) {
	t.Helper()
	if udp {
		udpTraffic(t, pid, n)
	}
	for range n {
		out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "busybox", "wget", "-qO-", "http://127.0.0.1:80/").CombinedOutput()
		if err != nil {
			t.Fatalf("HTTP in the target: %v: %s", err, out)
		}
	}
}

// udpTraffic sends n datagrams to the echo on pid's 127.0.0.1:5353 and
// waits for each answer.
func udpTraffic(t *testing.T, pid, n int) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// listenPacketIn leaves the locked thread as it found it.
		pc, err := func() (net.PacketConn, error) {
			runtime.LockOSThread()
			return listenPacketIn(pid, "127.0.0.1:0")
		}()
		if err != nil {
			done <- err
			return
		}
		defer pc.Close()
		to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
		for i := range n {
			if _, err := pc.WriteTo([]byte(fmt.Sprintf("ping %d", i)), to); err != nil {
				done <- err
				return
			}
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := pc.ReadFrom(make([]byte, 100)); err != nil {
				done <- fmt.Errorf("the echo did not answer: %w", err)
				return
			}
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("UDP traffic in the target: %v", err)
	}
}

// TestCaptureFilterToFile: a capture of "udp port 5353" to a file while UDP
// and HTTP traffic flow holds the UDP datagrams and their echoes only, as
// tcpdump reads it back; SIGINT ends it with exit 0 and a whole file.
func TestCaptureFilterToFile(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	udpEcho(t, tg.pid, "127.0.0.1:5353")
	dir := t.TempDir()
	file := filepath.Join(dir, "udp.pcap")
	c := startCapture(t, f, tg.ref(), "-w", file, "udp", "port", "5353")
	traffic(t, tg.pid, 5, true)
	time.Sleep(200 * time.Millisecond) // the last packets reach the socket
	if code := c.wait(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0: %s", code, c.errText())
	}
	head, lines := readPcap(t, file, nil)
	if !strings.Contains(head, "LINUX_SLL") || len(lines) != 10 {
		t.Fatalf("the capture: %s, %d packets, want 10 (5 datagrams, 5 echoes):\n%s", head, len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "127.0.0.1.5353") || strings.Contains(l, "Flags [") {
			t.Errorf("a packet the filter should have left out: %s", l)
		}
	}
	if _, again := readPcap(t, file, nil, "udp", "port", "5353"); len(again) != len(lines) {
		t.Errorf("tcpdump's own filter keeps %d of %d packets", len(again), len(lines))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want the capture alone", len(ents))
	}
}

// TestCaptureStdout: -w - on lo with -c stops after N packets, Ethernet
// frames of the HTTP traffic only.
func TestCaptureStdout(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	udpEcho(t, tg.pid, "127.0.0.1:5353")
	c := startCapture(t, f, tg.ref(), "-w", "-", "-i", "lo", "-c", "4", "tcp and port 80")
	traffic(t, tg.pid, 3, true)
	if code := c.wait(t, 0); code != 0 {
		t.Fatalf("exit %d, want 0 after 4 packets: %s", code, c.errText())
	}
	head, lines := readPcap(t, "-", c.stdout.Bytes())
	if !strings.Contains(head, "EN10MB") || len(lines) != 4 {
		t.Fatalf("the capture: %s, %d packets, want 4:\n%s", head, len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "127.0.0.1.80") || !strings.Contains(l, "Flags [") {
			t.Errorf("not a TCP packet of port 80: %s", l)
		}
	}
}

// TestCaptureUserNS: a target in its own user namespace (its network
// namespace owned by it) is captured as any other.
func TestCaptureUserNS(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{userns: true})
	c := startCapture(t, f, tg.ref(), "-w", "-", "-c", "2", "tcp", "dst", "port", "80")
	traffic(t, tg.pid, 2, false)
	if code := c.wait(t, 0); code != 0 {
		t.Fatalf("exit %d: %s", code, c.errText())
	}
	if _, lines := readPcap(t, "-", c.stdout.Bytes()); len(lines) != 2 || !strings.Contains(lines[0], "> 127.0.0.1.80:") {
		t.Errorf("the capture: %q, want 2 packets to port 80", lines)
	}
}

// TestCaptureDuration: --duration ends a capture that saw nothing with
// exit 0 and a valid, empty pcap.
func TestCaptureDuration(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	file := filepath.Join(t.TempDir(), "quiet.pcap")
	start := time.Now()
	c := startCapture(t, f, tg.ref(), "--duration", "1s", "-w", file, "-i", "any", "port", "9")
	if code := c.wait(t, 0); code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, c.errText())
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Errorf("--duration 1s took %s", d)
	}
	if _, lines := readPcap(t, file, nil); len(lines) != 0 {
		t.Errorf("%d packets of port 9", len(lines))
	}
}

// TestCaptureTargetExits: the target exiting ends the capture with 75,
// what was captured kept.
func TestCaptureTargetExits(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	file := filepath.Join(t.TempDir(), "gone.pcap")
	c := startCapture(t, f, tg.ref(), "-w", file, "tcp")
	traffic(t, tg.pid, 1, false)
	tg.stop()
	if code := c.wait(t, 0); code != 75 || !strings.Contains(c.errText(), "the target exited") {
		t.Errorf("exit %d %q, want 75 saying the target exited", code, c.errText())
	}
	if _, lines := readPcap(t, file, nil); len(lines) == 0 {
		t.Errorf("the packets before the exit are lost")
	}
}

// TestCaptureErrors: a filter that does not compile, an interface the
// target lacks and a missing target fail with one line and leave no file.
func TestCaptureErrors(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	dir := t.TempDir()
	file := filepath.Join(dir, "x.pcap")
	expectFailure(t, f, 64, []string{`filter "udp prt 53"`}, "capture", tg.ref(), "-w", file, "udp", "prt", "53")
	expectFailure(t, f, 64, []string{`filter "tcp[13] & 2 !="`}, "capture", tg.ref(), "-w", file, "tcp[13] & 2 !=")
	expectFailure(t, f, 64, []string{`no interface "eth9"`, "it has lo"}, "capture", tg.ref(), "-w", file, "-i", "eth9")
	expectFailure(t, f, 66, []string{"999999"}, "capture", "pid:999999", "-w", file)
	expectFailure(t, f, 64, []string{"-c -2"}, "capture", tg.ref(), "-w", file, "-c", "-2")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed captures left %d files", len(ents))
	}
}

// TestCaptureDocker captures a Docker container's traffic (--network none:
// its loopback only) by name.
func TestCaptureDocker(t *testing.T) {
	f := setup(t)
	host := e2eutil.StartDockerd(t)
	e2eutil.DockerLoadImage(t, host, f.images["distroless"], "ephem/distroless:test")
	id := e2eutil.DockerRun(t, host, "--name", "ephem-e2e-capture", "ephem/distroless:test")
	pid := e2eutil.DockerPID(t, host, id)
	t.Setenv("DOCKER_HOST", host)
	c := startCapture(t, f, "docker://ephem-e2e-capture", "-w", "-", "-c", "3", "tcp", "port", "80")
	udpEcho(t, pid, "127.0.0.1:5353")
	traffic(t, pid, 2, true)
	if code := c.wait(t, 0); code != 0 {
		t.Fatalf("exit %d: %s", code, c.errText())
	}
	if _, lines := readPcap(t, "-", c.stdout.Bytes()); len(lines) != 3 || !strings.Contains(lines[0], "127.0.0.1.80") {
		t.Errorf("the container's capture: %q, want 3 packets of port 80", lines)
	}
}

// TestCaptureNotRoot: as another user, capture says it needs root (77).
func TestCaptureNotRoot(t *testing.T) {
	f := setup(t)
	dir, bin := binaryForNobody(t, f)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"capture", "pid:1", "--cache-dir", dir, "-w", "-", "udp")
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code != 77 || !strings.Contains(string(out), "needs root") || strings.Count(string(out), "\n") != 1 {
		t.Errorf("as nobody: exit %d %q, want 77 and one line saying it needs root", code, out)
	}
}

// packetsOf groups tcpdump -x lines into one string per packet.
func packetsOf(lines []string) []string {
	var ps []string
	for _, l := range lines {
		if strings.HasPrefix(l, "0x") && len(ps) > 0 {
			ps[len(ps)-1] += "\n" + l
		} else {
			ps = append(ps, l)
		}
	}
	return ps
}

// subsequence says whether every element of a appears in b, in order.
func subsequence(a, b []string) bool {
	i := 0
	for _, x := range b {
		if i < len(a) && a[i] == x {
			i++
		}
	}
	return i == len(a)
}

// TestCaptureMatchesTcpdump: ephem's capture of the same traffic as
// tcpdump's own, run in the target's network namespace, holds the same
// packets byte for byte, headers included, on lo and on any (with the
// cooked headers tcpdump -y LINUX_SLL writes).
func TestCaptureMatchesTcpdump(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	udpEcho(t, tg.pid, "127.0.0.1:5353")
	for _, iface := range [][]string{{"-i", "lo"}, {"-i", "any", "-y", "LINUX_SLL"}} {
		t.Run(iface[1], func(t *testing.T) {
			dir := t.TempDir()
			ref := filepath.Join(dir, "tcpdump.pcap")
			args := append([]string{"-t", strconv.Itoa(tg.pid), "-n", "tcpdump", "--immediate-mode", "-U", "-w", ref}, iface...)
			tcpdump := exec.Command("nsenter", append(args, "udp or tcp port 80")...)
			stderr, err := tcpdump.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := tcpdump.Start(); err != nil {
				t.Fatalf("starting tcpdump: %v", err)
			}
			t.Cleanup(func() { _ = tcpdump.Process.Kill(); _ = tcpdump.Wait() })
			listening := make(chan struct{})
			var tdErr strings.Builder
			scanned := make(chan struct{})
			go func() {
				defer close(scanned)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					tdErr.WriteString(sc.Text() + "\n")
					if strings.Contains(sc.Text(), "listening on") {
						close(listening)
					}
				}
			}()
			select {
			case <-listening:
			case <-time.After(30 * time.Second):
				t.Fatal("tcpdump did not start listening within 30s")
			}
			mine := filepath.Join(dir, "ephem.pcap")
			c := startCapture(t, f, tg.ref(), "-w", mine, "-i", iface[1], "udp", "or", "tcp", "port", "80")
			traffic(t, tg.pid, 3, true)
			time.Sleep(300 * time.Millisecond)
			if code := c.wait(t, syscall.SIGINT); code != 0 {
				t.Fatalf("ephem: exit %d: %s", code, c.errText())
			}
			_ = tcpdump.Process.Signal(syscall.SIGINT)
			select {
			case <-scanned: // tcpdump closed its stderr: it has written its file
			case <-time.After(15 * time.Second):
				t.Fatal("tcpdump did not end within 15s of SIGINT")
			}
			_ = tcpdump.Wait()
			_, wantLines := readPcap(t, ref, nil, "-e", "-t", "-x")
			_, gotLines := readPcap(t, mine, nil, "-e", "-t", "-x")
			want, got := packetsOf(wantLines), packetsOf(gotLines)
			// tcpdump may drop packets on any (it says so); ephem may not.
			if len(want) < 10 || !subsequence(want, got) || (iface[1] == "lo" && len(got) != len(want)) {
				t.Errorf("ephem's capture (%d packets) differs from tcpdump's (%d packets; %s):\n%s\n--- tcpdump:\n%s",
					len(got), len(want), tdErr.String(), strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestCaptureLibpcapFilter: filters only libpcap compiles (ephem loads
// Debian's libpcap0.8 at run time) run in the kernel with UDP and HTTP
// traffic flowing: on any (cooked headers) "tcp[tcpflags] & tcp-syn != 0"
// keeps the SYNs and SYN-ACKs of 3 HTTP requests, on lo "icmp" keeps the
// 2 pings and their echoes; tcpdump reads each back, its own filter
// keeping every packet.
func TestCaptureLibpcapFilter(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	udpEcho(t, tg.pid, "127.0.0.1:5353")
	const syn = "tcp[tcpflags] & tcp-syn != 0"
	file := filepath.Join(t.TempDir(), "syn.pcap")
	c := startCapture(t, f, tg.ref(), "-w", file, "-c", "6", syn)
	traffic(t, tg.pid, 3, true)
	if code := c.wait(t, 0); code != 0 {
		t.Fatalf("%q: exit %d after 3 HTTP requests, want 0 after 6 packets: %s", syn, code, c.errText())
	}
	head, lines := readPcap(t, file, nil)
	if !strings.Contains(head, "LINUX_SLL") || len(lines) != 6 {
		t.Fatalf("%q: %s, %d packets, want 6:\n%s", syn, head, len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "Flags [S]") && !strings.Contains(l, "Flags [S.]") {
			t.Errorf("%q kept a packet without SYN: %s", syn, l)
		}
	}
	if _, again := readPcap(t, file, nil, syn); len(again) != len(lines) {
		t.Errorf("tcpdump's own %q keeps %d of %d packets", syn, len(again), len(lines))
	}

	c = startCapture(t, f, tg.ref(), "-w", "-", "-i", "lo", "-c", "4", "icmp")
	traffic(t, tg.pid, 2, true)
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(tg.pid), "-n", "busybox", "ping", "-c", "2", "-W", "5", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("ping in the target: %v: %s", err, out)
	}
	if code := c.wait(t, 0); code != 0 {
		t.Fatalf("icmp: exit %d after 2 pings, want 0 after 4 packets: %s", code, c.errText())
	}
	head, lines = readPcap(t, "-", c.stdout.Bytes())
	if !strings.Contains(head, "EN10MB") || len(lines) != 4 {
		t.Fatalf("icmp: %s, %d packets, want 4:\n%s", head, len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "ICMP echo") {
			t.Errorf("icmp kept another packet: %s", l)
		}
	}
}
