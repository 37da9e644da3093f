package pcap

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// LinkType is a pcap link-layer header type (LINKTYPE_*).
type LinkType uint32

// The link types a capture writes.
const (
	// LinkEthernet is LINKTYPE_ETHERNET: an Ethernet header first
	// (loopback devices have a zeroed one).
	LinkEthernet LinkType = 1
	// LinkLinuxSLL is LINKTYPE_LINUX_SLL, Linux "cooked" headers, as
	// tcpdump -i any writes.
	LinkLinuxSLL LinkType = 113
)

// Sizes of the format's headers.
const (
	fileHeaderLen   = 24
	recordHeaderLen = 16
	// SLLHeaderLen is the length of a LINKTYPE_LINUX_SLL header.
	SLLHeaderLen = 16
)

// magicNanos marks a pcap file whose timestamps are in nanoseconds.
const magicNanos = 0xa1b23c4d

// Writer writes a pcap stream: the file header first, then one record per
// packet, each with a single Write so that a reader of a pipe sees whole
// packets as soon as they are captured.
type Writer struct {
	w       io.Writer
	snaplen uint32
	buf     []byte
}

// NewWriter writes the file header for link type lt and snaplen to w and
// returns a Writer of records.
func NewWriter(w io.Writer, lt LinkType, snaplen uint32) (*Writer, error) {
	h := make([]byte, fileHeaderLen)
	binary.LittleEndian.PutUint32(h[0:], magicNanos)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], uint32(lt))
	if _, err := w.Write(h); err != nil {
		return nil, fmt.Errorf("writing the pcap header: %w", err)
	}
	return &Writer{w: w, snaplen: snaplen}, nil
}

// WritePacket writes one record: the packet's first bytes (header, then
// data), captured at ts from a packet of origLen bytes on the wire.
func (w *Writer) WritePacket(ts time.Time, origLen int, header, data []byte) error {
	n := len(header) + len(data)
	if n > int(w.snaplen) {
		data = data[:int(w.snaplen)-len(header)]
		n = int(w.snaplen)
	}
	origLen = max(origLen, n)
	w.buf = append(w.buf[:0], make([]byte, recordHeaderLen)...)
	binary.LittleEndian.PutUint32(w.buf[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(w.buf[4:], uint32(ts.Nanosecond()))
	binary.LittleEndian.PutUint32(w.buf[8:], uint32(n))
	binary.LittleEndian.PutUint32(w.buf[12:], uint32(origLen))
	w.buf = append(append(w.buf, header...), data...)
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("writing a packet: %w", err)
	}
	return nil
}

// SLLHeader returns the LINKTYPE_LINUX_SLL header of a packet received
// with a sockaddr_ll of packet type pkttype, ARPHRD type hatype, link-layer
// address addr and protocol proto (host byte order).
func SLLHeader(pkttype, hatype uint16, addr []byte, proto uint16) []byte {
	h := make([]byte, SLLHeaderLen)
	binary.BigEndian.PutUint16(h[0:], pkttype)
	binary.BigEndian.PutUint16(h[2:], hatype)
	binary.BigEndian.PutUint16(h[4:], uint16(len(addr)))
	copy(h[6:14], addr)
	binary.BigEndian.PutUint16(h[14:], proto)
	return h
}

// Counter passes a pcap stream through to W and counts its records as
// they go, whatever the sizes of the writes: a live packet count for any
// source of pcap.
type Counter struct {
	// W receives the stream unchanged.
	W io.Writer

	packets atomic.Int64
	skip    int64 // bytes of the current record's body still to pass
	header  []byte
	big     bool // the file header says big-endian
	seen    int64
}

// Packets returns the number of records whose header has passed; it may
// be called while another goroutine writes.
func (c *Counter) Packets() int64 { return c.packets.Load() }

// Write implements io.Writer.
func (c *Counter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.scan(p[:n])
	return n, err
}

// scan advances the record parser over p.
func (c *Counter) scan(p []byte) {
	for len(p) > 0 {
		if c.skip > 0 {
			k := min(int64(len(p)), c.skip)
			c.skip -= k
			p = p[k:]
			continue
		}
		want := recordHeaderLen
		if c.seen == 0 {
			want = fileHeaderLen
		}
		k := min(len(p), want-len(c.header))
		c.header = append(c.header, p[:k]...)
		p = p[k:]
		if len(c.header) < want {
			return
		}
		if c.seen == 0 {
			c.big = binary.BigEndian.Uint32(c.header) == magicNanos || binary.BigEndian.Uint32(c.header) == 0xa1b2c3d4
		} else {
			c.packets.Add(1)
			if c.big {
				c.skip = int64(binary.BigEndian.Uint32(c.header[8:]))
			} else {
				c.skip = int64(binary.LittleEndian.Uint32(c.header[8:]))
			}
		}
		c.seen++
		c.header = c.header[:0]
	}
}
