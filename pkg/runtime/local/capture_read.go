package local

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ephem-dev/ephem/pkg/pcap"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"golang.org/x/sys/unix"
)

// run reads packets and writes them to w as pcap until ctx ends, count
// packets are written (0: no limit) or the target exits.
func (s *captureSocket) run(ctx context.Context, w io.Writer, count int) (err error) {
	lt := pcap.LinkEthernet
	if s.cooked {
		lt = pcap.LinkLinuxSLL
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	defer func() {
		if ferr := bw.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("writing the capture: %w", ferr)
		}
	}()
	pw, err := pcap.NewWriter(bw, lt, snaplen)
	if err != nil {
		return err
	}
	rc, err := s.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("%w: polling the packet socket: %w", runtime.ErrOS, err)
	}
	// A deadline in the past ends the read under way: when ctx ends or the
	// target exits.
	stop := make(chan struct{})
	defer close(stop)
	gone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-s.exited(stop):
			close(gone)
		case <-stop:
			return
		}
		_ = s.file.SetReadDeadline(time.Now())
	}()
	buf := make([]byte, snaplen)
	oob := make([]byte, 256)
	for n := 0; count == 0 || n < count; {
		// What is queued is read without waiting and written in batches;
		// before waiting for more, everything read so far is flushed, so
		// a reader of the stream sees each packet as soon as it is quiet.
		p, rerr := recvPacket(s.fd, buf, oob)
		if errors.Is(rerr, unix.EAGAIN) {
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("writing the capture: %w", err)
			}
			err := rc.Read(func(fd uintptr) bool {
				p, rerr = recvPacket(int(fd), buf, oob)
				return !errors.Is(rerr, unix.EAGAIN)
			})
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ended(gone)
			}
			if err != nil {
				return fmt.Errorf("%w: reading the packet socket: %w", runtime.ErrOS, err)
			}
		}
		switch {
		case errors.Is(rerr, unix.EINTR):
			continue
		case rerr != nil:
			return fmt.Errorf("%w: reading the packet socket: %w", runtime.ErrOS, rerr)
		case p.from.Pkttype == unix.PACKET_OUTGOING && p.from.Ifindex == s.loIndex:
			continue // seen again as it comes in on the loopback device
		}
		if err := s.write(pw, p, buf); err != nil {
			return err
		}
		n++
		// A flood never leaves the socket empty: look for the end here too.
		select {
		case <-gone:
			return ended(gone)
		default:
			if ctx.Err() != nil {
				return nil
			}
		}
	}
	return nil
}

// ended is how a capture ends once its read is cut short: nil when ctx
// ended, an ErrTargetGone error when the target exited.
func ended(gone <-chan struct{}) error {
	select {
	case <-gone:
		return fmt.Errorf("%w: the target exited; the capture ends", runtime.ErrTargetGone)
	default:
		return nil
	}
}

// exited returns a channel closed when the target exits; its goroutine
// ends with stop.
func (s *captureSocket) exited(stop <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	rc, err := s.pidfd.SyscallConn()
	if err != nil {
		return ch
	}
	go func() {
		// The pidfd is only read from here; stop closes it through close,
		// which ends this read with an error.
		if rc.Read(func(fd uintptr) bool { return !pidAlive(int(fd)) }) == nil {
			close(ch)
		}
	}()
	go func() { <-stop; _ = s.pidfd.SetReadDeadline(time.Now()) }()
	return ch
}

// packet is one received packet's details; its bytes are in the buffer.
type packet struct {
	from     unix.SockaddrLinklayer
	length   int // on the wire
	captured int
	ts       time.Time
	aux      *unix.TpacketAuxdata
}

// recvPacket receives one packet into buf with its control messages.
func recvPacket(fd int, buf, oob []byte) (packet, error) {
	n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_TRUNC)
	if err != nil {
		return packet{}, err
	}
	p := packet{length: n, captured: min(n, len(buf)), ts: time.Now()}
	if sa, ok := from.(*unix.SockaddrLinklayer); ok {
		p.from = *sa
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return p, nil //nolint:nilerr // the packet stands without its details
	}
	ne := binary.NativeEndian
	for _, m := range msgs {
		d := m.Data
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS:
			// struct timespec: two longs.
			switch len(d) {
			case 16:
				p.ts = time.Unix(int64(ne.Uint64(d)), int64(ne.Uint64(d[8:])))
			case 8:
				p.ts = time.Unix(int64(int32(ne.Uint32(d))), int64(int32(ne.Uint32(d[4:]))))
			}
		case m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(d) >= 20:
			// struct tpacket_auxdata: status, len, snaplen, mac, net,
			// vlan_tci, vlan_tpid.
			p.aux = &unix.TpacketAuxdata{Status: ne.Uint32(d), Len: ne.Uint32(d[4:]), Snaplen: ne.Uint32(d[8:]),
				Vlan_tci: ne.Uint16(d[16:]), Vlan_tpid: ne.Uint16(d[18:])}
			p.length = int(p.aux.Len)
		}
	}
	return p, nil
}

// write writes p as a pcap record: an Ethernet frame with its VLAN tag
// put back where the kernel took it out, or a cooked header and the
// network-layer packet.
func (s *captureSocket) write(pw *pcap.Writer, p packet, buf []byte) error {
	data := buf[:p.captured]
	if s.cooked {
		addr := p.from.Addr[:min(int(p.from.Halen), len(p.from.Addr))]
		h := pcap.SLLHeader(uint16(p.from.Pkttype), p.from.Hatype, addr, htons(p.from.Protocol))
		return pw.WritePacket(p.ts, p.length+pcap.SLLHeaderLen, h, data)
	}
	if p.aux != nil && p.aux.Status&unix.TP_STATUS_VLAN_VALID != 0 && len(data) >= 12 {
		tpid := uint16(unix.ETH_P_8021Q)
		if p.aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = p.aux.Vlan_tpid
		}
		tag := make([]byte, 16)
		copy(tag, data[:12])
		binary.BigEndian.PutUint16(tag[12:], tpid)
		binary.BigEndian.PutUint16(tag[14:], p.aux.Vlan_tci)
		return pw.WritePacket(p.ts, p.length+4, tag, data[12:])
	}
	return pw.WritePacket(p.ts, p.length, nil, data)
}
