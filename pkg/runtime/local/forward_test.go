package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestNormalize(t *testing.T) {
	got, err := normalize([]runtime.PortPair{{Local: 8080, Remote: 80}, {Protocol: "udp", LocalAddr: "::1", RemoteHost: "10.0.0.7", Remote: 53}})
	want := []runtime.PortPair{
		{Protocol: "tcp", LocalAddr: "127.0.0.1", Local: 8080, RemoteHost: "127.0.0.1", Remote: 80},
		{Protocol: "udp", LocalAddr: "::1", RemoteHost: "10.0.0.7", Remote: 53},
	}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("normalize: %v (-want +got):\n%s", err, cmp.Diff(want, got))
	}
	for _, p := range []runtime.PortPair{{Remote: 0}, {Protocol: "sctp", Remote: 1}, {RemoteHost: "db.example", Remote: 1}, {LocalAddr: "localhost", Remote: 1}} {
		if _, err := normalize([]runtime.PortPair{p}); !errors.Is(err, runtime.ErrUsage) {
			t.Errorf("normalize(%+v): %v, want ErrUsage", p, err)
		}
	}
	if _, err := normalize(nil); !errors.Is(err, runtime.ErrUsage) {
		t.Errorf("normalize(nil): %v, want ErrUsage", err)
	}
}

// inNetNS runs a process in a network namespace of its own with its
// loopback up, and returns it.
func inNetNS(t *testing.T) target.Process {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: joins a network namespace")
	}
	cmd := exec.Command("/bin/sh", "-c", "ip link set lo up && exec sleep 300")
	// No Pdeathsig: it follows the forking thread, and the test's threads
	// that join namespaces end with their goroutines.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm"); string(b) == "sleep\n" {
			break
		}
		if i > 500 {
			t.Fatal("the namespace's process did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return target.Process{PID: cmd.Process.Pid, Description: "process " + strconv.Itoa(cmd.Process.Pid)}
}

// listenIn listens on network 127.0.0.1:0 in pid's network namespace, from
// a thread that joined it and dies with its goroutine.
func listenIn(t *testing.T, pid int, network string) io.Closer {
	t.Helper()
	type res struct {
		c   io.Closer
		err error
	}
	ch := make(chan res, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		if err != nil {
			ch <- res{nil, err}
			return
		}
		if network == "udp" {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			ch <- res{pc, err}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ch <- res{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c
}

// syncBuffer is a log the test reads while relays write it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestForwardNetNS relays TCP (with a half-close) and UDP into a namespace
// only the target has, reaps idle UDP flows, and closes everything when
// ctx ends.
func TestForwardNetNS(t *testing.T) {
	proc := inNetNS(t)
	defer func(d time.Duration) { udpIdle = d }(udpIdle)
	udpIdle = 200 * time.Millisecond
	ln := listenIn(t, proc.PID, "tcp").(net.Listener)
	pc := listenIn(t, proc.PID, "udp").(net.PacketConn)
	go func() { // TCP: answer with what was read, once the client half-closes
		c, err := ln.Accept()
		if err == nil {
			b, _ := io.ReadAll(c)
			_, _ = c.Write(append([]byte("got "), b...))
			c.Close()
		}
	}()
	go func() { // UDP echo
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	ns, err := openNetNS(proc)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.close()
	log := &syncBuffer{}
	f := &forwarder{ns: ns, ref: target.Ref{Raw: "pid:" + strconv.Itoa(proc.PID)}, log: &runtime.LineLog{W: log}}
	ports, _ := normalize([]runtime.PortPair{
		{Remote: uint16(ln.Addr().(*net.TCPAddr).Port)},
		{Protocol: "udp", Remote: uint16(pc.LocalAddr().(*net.UDPAddr).Port)},
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.run(ctx, ports) }()
	var addrs []string
	for deadline := time.Now().Add(5 * time.Second); len(addrs) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no forwarding lines: %q", log.String())
		}
		addrs = nil
		for _, l := range strings.Split(log.String(), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "forwarding" {
				addrs = append(addrs, strings.TrimSuffix(f[1], "/udp"))
			}
		}
	}
	c, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello"))
	_ = c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "got hello" {
		t.Errorf("TCP through the forward: %q %v, want %q", b, err, "got hello")
	}
	c.Close()
	u, err := net.Dial("udp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i, wait := range []time.Duration{0, 0, 400 * time.Millisecond} { // the last after the flow was reaped
		time.Sleep(wait)
		_ = u.SetDeadline(time.Now().Add(5 * time.Second))
		msg := "ping " + strconv.Itoa(i)
		_, _ = u.Write([]byte(msg))
		buf := make([]byte, 100)
		if n, err := u.Read(buf); string(buf[:n]) != msg {
			t.Errorf("UDP %d through the forward: %q %v", i, buf[:n], err)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run after ctx ended: %v, want nil", err)
		}
	case <-time.After(2 * shutdownWait):
		t.Fatal("run did not return after ctx ended")
	}
	if l, err := net.Listen("tcp", addrs[0]); err != nil {
		t.Errorf("%s still taken: %v", addrs[0], err)
	} else {
		l.Close()
	}
	if strings.Contains(log.String(), "warning") {
		t.Errorf("log: %q", log.String())
	}
}
