package local

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/ephem-dev/ephem/pkg/pcap"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var _ runtime.Capturer = (*Engine)(nil)

// snaplen is the most of a packet a capture keeps, as tcpdump's default.
const snaplen = 262144

// Capture implements runtime.Capturer. It needs no image and starts
// nothing: a thread of ephem joins the target's network namespace only to
// open an AF_PACKET socket there, and the socket, bound to that namespace,
// is read from the host. The filter runs in the kernel. Capture returns
// nil when ctx ends, after o.Count packets or after o.Duration, every
// packet read written to w; an ErrTargetGone error when the target exits.
func (e *Engine) Capture(ctx context.Context, ref target.Ref, o runtime.CaptureOptions, w io.Writer) error {
	if err := e.checkCaller(ctx, ref); err != nil { // root, or the owner (rootless.go)
		return err
	}
	iface := o.Interface
	if iface == "" {
		iface = "any"
	}
	// The filter's syntax is checked before anything is opened.
	if _, err := pcap.Compile(o.Filter, false, snaplen); err != nil {
		return fmt.Errorf("%w: %w", runtime.ErrUsage, err)
	}
	proc, err := e.resolve(ctx, ref)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", ref, err)
	}
	s, err := openCapture(proc, ref, iface)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.setup(o.Filter); err != nil {
		return err
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	fmt.Fprintf(e.opts.Log, "ephem: capturing on %s in %s's network namespace, link type %s, snapshot length %d bytes\n",
		iface, ref, s.linkName(), snaplen)
	err = s.run(ctx, w, o.Count)
	if st, serr := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); serr == nil && st.Drops > 0 {
		fmt.Fprintf(e.opts.Log, "ephem: %d packets dropped by the kernel (the reader fell behind)\n", st.Drops)
	}
	if err != nil {
		return fmt.Errorf("capturing in %s: %w", ref, err)
	}
	return nil
}

// link is one network interface of the target's namespace.
type link struct {
	index  int
	name   string
	hatype uint16 // ARPHRD_*
}

// captureSocket is an AF_PACKET socket opened in a target's network
// namespace, with what reading it needs.
type captureSocket struct {
	fd      int
	file    *os.File // fd, for the runtime's poller
	pidfd   *os.File
	ref     target.Ref
	link    link // ifindex 0: every interface
	cooked  bool
	loIndex int // the loopback device's index, whose outgoing copies are skipped
}

// openCapture opens proc's network namespace, checks that proc still runs
// once it is open, and opens the socket in it for iface ("any" for all).
func openCapture(proc target.Process, ref target.Ref, iface string) (*captureSocket, error) {
	fd, err := unix.PidfdOpen(proc.PID, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has exited", target.ErrNotFound, proc.Description)
	}
	s := &captureSocket{fd: -1, pidfd: os.NewFile(uintptr(fd), "pidfd"), ref: ref}
	ns, err := os.Open("/proc/" + strconv.Itoa(proc.PID) + "/ns/net")
	if err != nil {
		s.close()
		return nil, procError(proc.PID, "ns/net", err)
	}
	defer ns.Close()
	if !pidAlive(fd) { // the PID may have been reused since resolving
		s.close()
		return nil, fmt.Errorf("%w: %s exited while ephem opened it", target.ErrNotFound, proc.Description)
	}
	type result struct {
		links []link
		fd    int
		err   error
	}
	done := make(chan result, 1)
	cooked := iface == "any"
	go func() {
		if rootless() { // a helper in the target's user namespace (rootless_socket.go)
			var r result
			r.links, r.fd, r.err = rootlessPacketSocket(proc.PID, ns, iface, cooked)
			done <- r
			return
		}
		// Never unlocked: the thread leaves the host's network namespace
		// and ends with this goroutine.
		goruntime.LockOSThread()
		r := result{fd: -1}
		if r.err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); r.err != nil {
			r.err = fmt.Errorf("%w: joining the target's network namespace: %w", runtime.ErrOS, r.err)
			done <- r
			return
		}
		if r.links, r.err = listLinks(); r.err == nil {
			// Protocol 0: nothing is received until bind, after the filter.
			r.fd, r.err = unix.Socket(unix.AF_PACKET, packetType(r.links, iface, cooked)|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			if r.err != nil {
				r.err = socketError(r.err)
			}
		}
		done <- r
	}()
	r := <-done
	if r.err != nil {
		s.close()
		return nil, r.err
	}
	s.fd, s.file = r.fd, os.NewFile(uintptr(r.fd), "packet socket")
	if lo, ok := findLink(r.links, "lo"); ok {
		s.loIndex = lo.index
	}
	s.cooked = cooked
	if !cooked {
		l, ok := findLink(r.links, iface)
		if !ok {
			s.close()
			return nil, fmt.Errorf("%w: no interface %q in %s's network namespace: it has %s (or -i any)",
				runtime.ErrUsage, iface, ref, linkNames(r.links))
		}
		s.link, s.cooked = l, !rawLink(l.hatype)
	}
	return s, nil
}

// packetType is the packet socket type for iface: SOCK_RAW for Ethernet
// frames, SOCK_DGRAM for cooked packets.
func packetType(links []link, iface string, cooked bool) int {
	if l, ok := findLink(links, iface); cooked || (ok && !rawLink(l.hatype)) {
		return unix.SOCK_DGRAM
	}
	return unix.SOCK_RAW
}

// socketError says why a packet socket could not be opened.
func socketError(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: opening a packet socket in the target's network namespace (CAP_NET_RAW): %w", runtime.ErrPermission, err)
	}
	return fmt.Errorf("%w: opening a packet socket: %w", runtime.ErrOS, err)
}

// rawLink says whether packets of an interface of ARPHRD type t are
// captured with their link-layer header, as Ethernet frames.
func rawLink(t uint16) bool {
	return t == unix.ARPHRD_ETHER || t == unix.ARPHRD_LOOPBACK
}

func (s *captureSocket) linkName() string {
	if s.cooked {
		return "LINUX_SLL (Linux cooked)"
	}
	return "EN10MB (Ethernet)"
}

// setup compiles the filter for the socket's kind of packets, attaches
// it, asks for timestamps and packet details, and binds the socket to
// every protocol of its interface, which starts the capture.
func (s *captureSocket) setup(filter string) error {
	prog, err := pcap.Compile(filter, s.cooked, snaplen)
	if err != nil {
		return fmt.Errorf("%w: %w", runtime.ErrUsage, err)
	}
	if s.loIndex > 0 && (s.link.index == 0 || s.link.index == s.loIndex) {
		if prog, err = skipLoopbackOutgoing(s.loIndex, prog); err != nil {
			return err // a bug: exit 70
		}
	}
	if len(prog) > 0 {
		if err := attachFilter(s.fd, prog); err != nil {
			return fmt.Errorf("%w: attaching the filter: %w", runtime.ErrOS, err)
		}
	}
	for _, o := range [][3]int{
		{unix.SOL_PACKET, unix.PACKET_AUXDATA, 1},
		{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
	} {
		if err := unix.SetsockoptInt(s.fd, o[0], o[1], o[2]); err != nil {
			return fmt.Errorf("%w: setting socket option %d: %w", runtime.ErrOS, o[1], err)
		}
	}
	// A larger buffer rides out bursts; refused, the default serves.
	_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.link.index}
	if err := unix.Bind(s.fd, sa); err != nil {
		return fmt.Errorf("%w: binding the packet socket to %s: %w", runtime.ErrOS, s.ifaceName(), err)
	}
	return nil
}

func (s *captureSocket) ifaceName() string {
	if s.link.index == 0 {
		return "any"
	}
	return s.link.name
}

// skipLoopbackOutgoing puts before prog the instructions that drop the
// loopback device's outgoing copies in the kernel: each packet sent on lo
// comes in again, as tcpdump shows it once.
func skipLoopbackOutgoing(loIndex int, prog []bpf.RawInstruction) ([]bpf.RawInstruction, error) {
	pre, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(loIndex), SkipTrue: 3},
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("assembling the loopback filter: %w", err)
	}
	if len(prog) == 0 {
		rest, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: snaplen}})
		if err != nil {
			return nil, fmt.Errorf("assembling the loopback filter: %w", err)
		}
		prog = rest
	}
	return append(pre, prog...), nil
}

// attachFilter attaches a classic BPF program to fd.
func attachFilter(fd int, prog []bpf.RawInstruction) error {
	f := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		f[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

func (s *captureSocket) close() {
	if s.file != nil {
		_ = s.file.Close()
	}
	_ = s.pidfd.Close()
}

// listLinks lists the interfaces of the calling thread's network
// namespace through rtnetlink.
func listLinks() ([]link, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("%w: listing the target's interfaces: %w", runtime.ErrOS, err)
	}
	return parseLinks(rib)
}

// parseLinks parses an RTM_GETLINK dump.
func parseLinks(rib []byte) ([]link, error) {
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing the target's interfaces: %w", runtime.ErrOS, err)
	}
	var links []link
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		// struct ifinfomsg: family, pad, type (ARPHRD), index, ...
		hatype := binary.NativeEndian.Uint16(m.Data[2:])
		index := int(int32(binary.NativeEndian.Uint32(m.Data[4:])))
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFLA_IFNAME {
				name := strings.TrimRight(string(a.Value), "\x00")
				links = append(links, link{index: index, name: name, hatype: hatype})
			}
		}
	}
	return links, nil
}

func findLink(links []link, name string) (link, bool) {
	i := slices.IndexFunc(links, func(l link) bool { return l.name == name })
	if i < 0 {
		return link{}, false
	}
	return links[i], true
}

func linkNames(links []link) string {
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.name
	}
	if len(names) == 0 {
		return "no interfaces"
	}
	return strings.Join(names, ", ")
}

// htons converts a 16-bit value to network byte order, as sockaddr_ll
// holds its protocol.
// It is its own inverse (ntohs).
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}
