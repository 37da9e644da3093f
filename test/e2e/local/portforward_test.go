package local_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// forward is a running "ephem port-forward".
type forward struct {
	cmd   *exec.Cmd
	addrs []string // the local address of each forward, as printed
	udp   []bool   // whether each forward is UDP
	mu    sync.Mutex
	log   bytes.Buffer // stderr after the forwarding lines
	done  chan struct{}
}

// startForward runs ephem port-forward and waits for its forwarding lines.
func startForward(t *testing.T, f *fixture, args ...string) *forward {
	t.Helper()
	cmd := exec.Command(f.bin, append([]string{"port-forward"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ephem port-forward: %v", err)
	}
	fw := &forward{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-fw.done
	})
	lines := make(chan string)
	go func() {
		defer close(fw.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "forwarding ") {
				lines <- sc.Text()
				continue
			}
			fw.mu.Lock()
			fw.log.WriteString(sc.Text() + "\n")
			fw.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	want := len(args) - 1
	for len(fw.addrs) < want {
		select {
		case l := <-lines:
			// "forwarding 127.0.0.1:41234[/udp] -> ..."
			local := strings.Fields(l)[1]
			fw.addrs = append(fw.addrs, strings.TrimSuffix(local, "/udp"))
			fw.udp = append(fw.udp, strings.HasSuffix(local, "/udp"))
		case <-fw.done:
			t.Fatalf("ephem port-forward %v ended early: %s", args, fw.stderr())
		case <-time.After(30 * time.Second):
			t.Fatalf("ephem port-forward %v printed %d forwarding lines in 30s, want %d", args, len(fw.addrs), want)
		}
	}
	return fw
}

func (fw *forward) stderr() string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.log.String()
}

// stop sends sig and returns the exit code, failing t after 10s.
func (fw *forward) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := fw.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fw.done:
		return fw.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("ephem port-forward did not end within 10s of %v", sig)
	}
	return -1
}

// udpEcho serves a UDP echo on addr in pid's network namespace. Its socket
// is made on a thread that joins the namespace and then returns to the
// host's: a thread that died would take along the children it forked with
// Pdeathsig (the fixture's registry, the targets).
func udpEcho(t *testing.T, pid int, addr string) {
	t.Helper()
	ready := make(chan error, 1)
	var pc net.PacketConn
	go func() {
		runtime.LockOSThread()
		var err error
		pc, err = listenPacketIn(pid, addr)
		ready <- err
		buf := make([]byte, 2048)
		for err == nil {
			var n int
			var from net.Addr
			if n, from, err = pc.ReadFrom(buf); err == nil {
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("starting a UDP echo in the target: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
}

// listenPacketIn listens on addr in pid's network namespace from the
// calling goroutine's locked thread, and unlocks it once back in this
// process's namespace (never otherwise: the thread then ends with the
// goroutine).
func listenPacketIn(pid int, addr string) (net.PacketConn, error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", addr)
	if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return pc, err
}

// udpRoundTrip sends msg to addr and returns the answer.
func udpRoundTrip(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("UDP through %s: %v", addr, err)
	}
	return string(buf[:n])
}

func httpGet(t *testing.T, addr string) string {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET through %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestPortForward: the shell-less target's HTTP server on its own
// 127.0.0.1:80 and a UDP echo on its 127.0.0.1:5353 answer through one
// ephem port-forward, a refused port is logged while the others keep
// serving, and SIGINT ends it with exit 0, the ports free again.
func TestPortForward(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	udpEcho(t, tg.pid, "127.0.0.1:5353")
	fw := startForward(t, f, tg.ref(), "0:80", "127.0.0.1:0:127.0.0.1:81", "0:5353/udp")
	if len(fw.addrs) != 3 || !strings.HasPrefix(fw.addrs[0], "127.0.0.1:") {
		t.Fatalf("forwarding lines give %q", fw.addrs)
	}
	if got := httpGet(t, fw.addrs[0]); !strings.Contains(got, "OK") {
		t.Errorf("GET through the forward: %q, want the target's OK", got)
	}
	for i := range 3 {
		msg := fmt.Sprintf("ping %d", i)
		if got := udpRoundTrip(t, fw.addrs[2], msg); got != msg {
			t.Errorf("UDP echo through the forward: %q, want %q", got, msg)
		}
	}
	// Nothing listens on the target's port 81: the connection is closed
	// and a line says why.
	if c, err := net.DialTimeout("tcp", fw.addrs[1], 5*time.Second); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, _ := c.Read(make([]byte, 1)); n != 0 {
			t.Errorf("a forward to a closed port sent data")
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(fw.stderr(), "connection refused") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(fw.stderr(), "127.0.0.1:81") || !strings.Contains(fw.stderr(), "connection refused") {
		t.Errorf("stderr after a refused connection: %q, want a line naming 127.0.0.1:81", fw.stderr())
	}
	if got := httpGet(t, fw.addrs[0]); !strings.Contains(got, "OK") {
		t.Errorf("GET after a refused connection: %q", got)
	}
	// A connection held open across the interrupt is closed with it.
	held, err := net.Dial("tcp", fw.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if code := fw.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0: %s", code, fw.stderr())
	}
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Errorf("a connection held open survived the interrupt")
	}
	checkFreed(t, fw)
}

// checkFreed fails unless every port of fw can be listened on again and
// its process is gone.
func checkFreed(t *testing.T, fw *forward) {
	t.Helper()
	for i, a := range fw.addrs {
		var err error
		if fw.udp[i] {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", a); err == nil {
				pc.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen("tcp", a); err == nil {
				ln.Close()
			}
		}
		if err != nil {
			t.Errorf("%s (udp %v) after the port-forward ended: %v", a, fw.udp[i], err)
		}
	}
	if err := syscall.Kill(fw.cmd.Process.Pid, 0); err == nil {
		t.Errorf("ephem (pid %d) still runs", fw.cmd.Process.Pid)
	}
}

// TestPortForwardTargetExits: the target exiting ends the port-forward
// with 75 and one line, its port free again.
func TestPortForwardTargetExits(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	fw := startForward(t, f, tg.ref(), "0:80")
	tg.stop()
	select {
	case <-fw.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the port-forward did not end within 10s of the target's exit")
	}
	if code := fw.cmd.ProcessState.ExitCode(); code != 75 || !strings.Contains(fw.stderr(), "the port-forward ends") {
		t.Errorf("exit %d %q, want 75 saying the port-forward ends", code, fw.stderr())
	}
	checkFreed(t, fw)
}

// TestPortForwardErrors: a bad port, a local port in use, a missing target
// and a backend without the verb each fail with one line.
func TestPortForwardErrors(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	expectFailure(t, f, 64, []string{`"8x"`}, "port-forward", tg.ref(), "8x:80")
	expectFailure(t, f, 64, []string{"tcp or udp"}, "port-forward", tg.ref(), "8080:80/sctp")
	expectFailure(t, f, 64, []string{"not a port number"}, "port-forward", tg.ref(), "8080:0")
	expectFailure(t, f, 64, []string{"not an IP address"}, "port-forward", tg.ref(), "8080:db.example:80")
	expectFailure(t, f, 64, []string{"at least one port"}, "port-forward", tg.ref())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	expectFailure(t, f, 71, []string{"address already in use"}, "port-forward", tg.ref(), "0:80", fmt.Sprintf("%d:80", port))
	expectFailure(t, f, 66, []string{"no process with PID"}, "port-forward", "pid:999999999", "8080:80")
	expectFailure(t, f, 64, []string{"--image is for Kubernetes targets, not " + tg.ref()}, "port-forward", "--image", "busybox", tg.ref(), "8080:80")
}
