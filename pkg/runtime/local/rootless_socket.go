package local

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"golang.org/x/sys/unix"
)

// Without root, port-forward and capture cannot join the target's network
// namespace from a thread of ephem: that needs the user namespace that owns
// it, which a multithreaded process cannot join. A socket helper does: ephem
// re-executed with nsenter.EnvSockets, it joins the target's user namespace
// (which the caller owns: checkCaller), then its network namespace, before
// the Go runtime starts, and makes sockets there on request, passing them
// back. A socket keeps its network namespace; the helper holds nothing but
// the ability to make more, and ends when ephem closes its end.

// helperWait bounds every exchange with the socket helper and its exit.
var helperWait = 5 * time.Second

// socketHelper is a running socket helper and ephem's end of its socket.
type socketHelper struct {
	mu   sync.Mutex
	ctl  *os.File // non-blocking SOCK_SEQPACKET, for the runtime's poller
	cmd  *exec.Cmd
	once sync.Once
}

// startSocketHelper starts a helper in pid's user namespace and, unless it
// is ephem's own, in its network namespace (netns, held open).
func startSocketHelper(pid int, netns *os.File) (*socketHelper, error) {
	user, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		return nil, procError(pid, "ns/user", err)
	}
	defer user.Close()
	files := []*os.File{user}
	netArg := "-1"
	if !sameNS(netns, "net") {
		files, netArg = append(files, netns), strconv.Itoa(3+len(files))
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: making the socket helper's socket: %w", runtime.ErrOS, err)
	}
	child := os.NewFile(uintptr(pair[1]), "socket helper")
	defer child.Close()
	if err := unix.SetNonblock(pair[0], true); err != nil {
		_ = unix.Close(pair[0])
		return nil, fmt.Errorf("%w: making the socket helper's socket: %w", runtime.ErrOS, err)
	}
	h := &socketHelper{ctl: os.NewFile(uintptr(pair[0]), "socket helper")}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"ephem-sockets"}
	cmd.Env = []string{nsenter.EnvSockets + "=" + strconv.Itoa(3) + "," + netArg + "," + strconv.Itoa(3+len(files))}
	cmd.ExtraFiles = append(files, child)
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		_ = h.ctl.Close()
		return nil, fmt.Errorf("%w: starting the socket helper: %w", runtime.ErrOS, err)
	}
	h.cmd = cmd
	child.Close()
	code, _, err := h.recv()
	if err == nil && code != 0 {
		what := "user"
		if code >= 1000 {
			what, code = "network", code-1000
		}
		errno := unix.Errno(code) //nolint:gosec // an errno
		err = fmt.Errorf("%w: joining the %s namespace of pid:%d: %w", runtime.ErrOS, what, pid, errno)
		if errno == unix.EPERM {
			err = fmt.Errorf("%w: needs root: joining the %s namespace of pid:%d: %w", runtime.ErrPermission, what, pid, errno)
		}
	}
	if err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// sameNS says whether the namespace f is ephem's own namespace of type ns.
func sameNS(f *os.File, ns string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat("/proc/self/ns/"+ns, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// socket asks the helper for a socket(2) made in the target's namespaces.
// The descriptor is close-on-exec; it is the caller's to close.
func (h *socketHelper) socket(domain, typ, proto int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var req [12]byte
	for i, v := range []int{domain, typ, proto} {
		binary.NativeEndian.PutUint32(req[4*i:], uint32(v)) //nolint:gosec // small constants, as C's int32_t
	}
	rc, err := h.ctl.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("%w: talking to the socket helper: %w", runtime.ErrOS, err)
	}
	_ = h.ctl.SetDeadline(time.Now().Add(helperWait))
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), req[:])
		return werr != unix.EAGAIN
	}); err != nil || werr != nil {
		_ = h.ctl.Close() // out of step with the helper: no more requests
		return -1, fmt.Errorf("%w: talking to the socket helper: %w", runtime.ErrOS, errors.Join(err, werr))
	}
	code, fd, err := h.recv()
	if err != nil {
		_ = h.ctl.Close()
		return -1, err
	}
	if code != 0 {
		return -1, os.NewSyscallError("socket", unix.Errno(code)) //nolint:gosec // an errno
	}
	return fd, nil
}

// recv reads one reply of the helper: its code and the descriptor it
// carries (-1 if none), within helperWait.
func (h *socketHelper) recv() (int, int, error) {
	rc, err := h.ctl.SyscallConn()
	if err != nil {
		return 0, -1, fmt.Errorf("%w: talking to the socket helper: %w", runtime.ErrOS, err)
	}
	_ = h.ctl.SetDeadline(time.Now().Add(helperWait))
	var buf [4]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf[:], oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil || rerr != nil {
		return 0, -1, fmt.Errorf("%w: talking to the socket helper: %w", runtime.ErrOS, errors.Join(err, rerr))
	}
	fd := -1
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, f := range fds {
				if fd < 0 {
					fd = f
				} else {
					_ = unix.Close(f)
				}
			}
		}
	}
	if n != len(buf) {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		return 0, -1, fmt.Errorf("%w: the socket helper ended early", runtime.ErrOS)
	}
	return int(int32(binary.NativeEndian.Uint32(buf[:]))), fd, nil //nolint:gosec // C's int32_t
}

// close ends the helper: it exits when its socket closes; it is killed if
// it has not within helperWait.
func (h *socketHelper) close() {
	h.once.Do(func() {
		_ = h.ctl.Close()
		if h.cmd == nil {
			return
		}
		done := make(chan struct{})
		go func() { _ = h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(helperWait):
			_ = h.cmd.Process.Kill()
			<-done
		}
	})
}

// dial connects to addr (an IP address and port) from a socket the helper
// made in the target's network namespace, within dialTimeout and ctx.
func (h *socketHelper) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dialing %s: %w", runtime.ErrUsage, addr, err)
	}
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	domain, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()})
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		domain, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	typ := unix.SOCK_STREAM
	if network == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := h.socket(domain, typ|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, opErr(err)
	}
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close() // FileConn holds a duplicate
	if err := connect(ctx, f, sa); err != nil {
		return nil, opErr(err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, opErr(err)
	}
	return c, nil
}

// connect connects the non-blocking socket f to sa, waiting for it within
// dialTimeout and ctx.
func connect(ctx context.Context, f *os.File, sa unix.Sockaddr) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sa) }); err != nil {
		return err
	}
	if cerr == nil {
		return nil
	}
	if cerr != unix.EINPROGRESS {
		return os.NewSyscallError("connect", cerr)
	}
	deadline := time.Now().Add(dialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = f.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var soErr int
	if err := rc.Write(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}} //nolint:gosec // a descriptor
		if k, _ := unix.Poll(p, 0); k == 0 {
			return false // not yet: wait for the poller
		}
		soErr, cerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		return true
	}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if cerr != nil {
		return os.NewSyscallError("getsockopt", cerr)
	}
	if soErr != 0 {
		return os.NewSyscallError("connect", unix.Errno(soErr)) //nolint:gosec // an errno
	}
	_ = f.SetWriteDeadline(time.Time{})
	return nil
}

// rootlessPacketSocket lists the interfaces of pid's network namespace
// (ns) and opens a packet socket there for iface, through a helper that
// ends before it returns.
func rootlessPacketSocket(pid int, ns *os.File, iface string, cooked bool) ([]link, int, error) {
	if sameNS(ns, "net") {
		return nil, -1, fmt.Errorf("%w: needs root: pid:%d shares ephem's network namespace, where only root may capture", runtime.ErrPermission, pid)
	}
	h, err := startSocketHelper(pid, ns)
	if err != nil {
		return nil, -1, err
	}
	defer h.close()
	nl, err := h.socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, -1, fmt.Errorf("%w: listing the target's interfaces: %w", runtime.ErrOS, err)
	}
	rib, err := netlinkDump(nl, unix.RTM_GETLINK)
	_ = unix.Close(nl)
	if err != nil {
		return nil, -1, fmt.Errorf("%w: listing the target's interfaces: %w", runtime.ErrOS, err)
	}
	links, err := parseLinks(rib)
	if err != nil {
		return nil, -1, err
	}
	fd, err := h.socket(unix.AF_PACKET, packetType(links, iface, cooked)|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, -1, socketError(err)
	}
	return links, fd, nil
}

// netlinkDump sends a dump request of type typ on the rtnetlink socket fd
// and returns the messages of its answer, as syscall.NetlinkRIB does on a
// socket of its own; each read waits helperWait at most.
func netlinkDump(fd, typ int) ([]byte, error) {
	tv := unix.NsecToTimeval(helperWait.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	// struct nlmsghdr, then struct rtgenmsg (one byte: AF_UNSPEC).
	req := make([]byte, unix.NLMSG_HDRLEN+1)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], uint16(typ))                                //nolint:gosec // RTM_*
	binary.NativeEndian.PutUint16(req[6:], uint16(unix.NLM_F_DUMP|unix.NLM_F_REQUEST)) //nolint:gosec // flags
	binary.NativeEndian.PutUint32(req[8:], 1)
	if err := unix.Sendto(fd, req, 0, kernel); err != nil {
		return nil, os.NewSyscallError("sendto", err)
	}
	var out []byte
	buf := make([]byte, 64<<10)
	for range 4096 { // a dump of 4096 reads is more than any namespace has
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, os.NewSyscallError("recvfrom", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		// What precedes NLMSG_DONE in the same read is part of the answer
		// (parseLinks skips all but RTM_NEWLINK).
		out = append(out, buf[:n]...)
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				return nil, errors.New("the kernel answered the dump with an error")
			}
		}
	}
	return nil, errors.New("the interface dump did not end")
}
