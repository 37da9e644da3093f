package pcap

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func TestWriterAndCounter(t *testing.T) {
	var out bytes.Buffer
	w, err := NewWriter(&out, LinkLinuxSLL, 100)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	hdr := SLLHeader(4, 772, make([]byte, 6), 0x0800)
	for i := range 5 {
		if err := w.WritePacket(ts, 300, hdr, bytes.Repeat([]byte{byte(i)}, 40*i)); err != nil {
			t.Fatal(err)
		}
	}
	b := out.Bytes()
	if m := binary.LittleEndian.Uint32(b); m != magicNanos || binary.LittleEndian.Uint32(b[20:]) != 113 || binary.LittleEndian.Uint32(b[16:]) != 100 {
		t.Fatalf("file header % x", b[:24])
	}
	// The record of the last packet (16+160 bytes) is cut at the snaplen.
	rec := b[24:]
	for range 4 {
		rec = rec[16+binary.LittleEndian.Uint32(rec[8:]):]
	}
	if incl, orig := binary.LittleEndian.Uint32(rec[8:]), binary.LittleEndian.Uint32(rec[12:]); incl != 100 || orig != 300 || len(rec) != 116 {
		t.Errorf("last record: incl %d orig %d len %d, want 100 300 116", incl, orig, len(rec))
	}
	if sec, ns := binary.LittleEndian.Uint32(rec[0:]), binary.LittleEndian.Uint32(rec[4:]); sec != 1700000000 || ns != 123456789 {
		t.Errorf("timestamp %d.%09d", sec, ns)
	}
	// The counter counts records however the stream is split.
	for _, size := range []int{1, 7, 16, 24, 1000} {
		var sink bytes.Buffer
		c := &Counter{W: &sink}
		for i := 0; i < len(b); i += size {
			_, _ = c.Write(b[i:min(i+size, len(b))])
		}
		if c.Packets() != 5 || !bytes.Equal(sink.Bytes(), b) {
			t.Errorf("writes of %d bytes: counted %d, want 5", size, c.Packets())
		}
	}
}
