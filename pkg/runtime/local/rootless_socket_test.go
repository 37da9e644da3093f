package local

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"golang.org/x/sys/unix"
)

// startNetNS starts a process in new user and network namespaces, lo up,
// and returns its PID and its network namespace, open.
func startNetNS(t *testing.T) (int, *os.File) {
	t.Helper()
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "sh", "-c", "ip link set lo up && exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep did not start in its namespaces")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return pid, ns
}

// socketNS returns the inode of the network namespace socket fd is in.
func socketNS(t *testing.T, fd int) uint64 {
	t.Helper()
	nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		t.Fatalf("SIOCGSKNS: %v", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestSocketHelper: the helper's sockets are in the target's network
// namespace; dial connects there; closing ends the helper.
func TestSocketHelper(t *testing.T) {
	pid, ns := startNetNS(t)
	h, err := startSocketHelper(pid, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	var want unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &want); err != nil {
		t.Fatal(err)
	}
	fd, err := h.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := socketNS(t, fd); got != want.Ino {
		t.Errorf("the helper's socket is in net namespace %d, want the target's %d", got, want.Ino)
	}
	// A listener in the target, reached by dial and not from the host.
	ln, err := net.FileListener(listenOn(t, fd))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := h.dial(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s in the target: %v", addr, err)
	}
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil || string(b) != "hi" {
		t.Errorf("read %q, %v; want hi", b, err)
	}
	c.Close()
	if _, err := h.dial(context.Background(), "tcp", "127.0.0.1:1"); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("dial of a closed port: %v, want ECONNREFUSED", err)
	}
	// UDP: a datagram socket of the helper's answers one dialed there.
	ufd, err := h.socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	uf := os.NewFile(uintptr(ufd), "udp")
	defer uf.Close()
	if err := unix.Bind(ufd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	pc, err := net.FilePacketConn(uf)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := h.dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	ub := make([]byte, 8)
	if n, _, err := pc.ReadFrom(ub); err != nil || string(ub[:n]) != "ping" {
		t.Errorf("udp through the helper: %q, %v", ub[:n], err)
	}
	h.close()
	if h.cmd.ProcessState == nil || !h.cmd.ProcessState.Exited() || h.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("the helper after close: %v, want it ended with 0", h.cmd.ProcessState)
	}
	if _, err := h.socket(unix.AF_INET, unix.SOCK_STREAM, 0); !errors.Is(err, runtime.ErrOS) {
		t.Errorf("socket after close: %v, want an ErrOS error", err)
	}
}

// listenOn binds fd to 127.0.0.1:0, listens, and returns it as a file.
func listenOn(t *testing.T, fd int) *os.File {
	t.Helper()
	f := os.NewFile(uintptr(fd), "listener")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSocketHelperNotJoinable: a network namespace the user namespace
// does not own cannot be joined: 77.
func TestSocketHelperNotJoinable(t *testing.T) {
	_, other := startNetNS(t) // owned by another user namespace
	pid := startIn(t, 1)
	if h, err := startSocketHelper(pid, other); !errors.Is(err, runtime.ErrPermission) || !strings.Contains(err.Error(), "joining the network namespace") {
		t.Errorf("startSocketHelper into a network namespace of another owner: %v, want 77", err)
		if h != nil {
			h.close()
		}
	}
}

// TestNetlinkDump lists this namespace's interfaces as listLinks does.
func TestNetlinkDump(t *testing.T) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	rib, err := netlinkDump(fd, unix.RTM_GETLINK)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseLinks(rib)
	if err != nil {
		t.Fatal(err)
	}
	want, err := listLinks()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("netlinkDump gives %v, listLinks %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("link %d: %v, want %v", i, got[i], want[i])
		}
	}
}
