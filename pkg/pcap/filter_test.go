package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// The filters are checked against libpcap itself: each is compiled by
// Debian's tcpdump (-ddd) and by Compile, and both programs run on the
// same packets, which they must accept or reject alike.

var agreed = []string{
	"port 80", "tcp and port 80", "host 127.0.0.1", "not port 22", "udp", "tcp", "udp port 5353",
	"tcp port 80", "src port 80", "dst port 80", "src host 10.0.0.1", "dst host 10.0.0.1",
	"net 10.0.0.0/8", "src net 10.1.0.0/16", "ip host 10.0.0.1", "tcp dst port 80", "udp src port 53",
	"dst host fe80::1", "ip6 host fe80::1", "net fe80::/16",
	"tcp port 80 or udp port 53", "tcp port 80 or udp port 53 and host 10.0.0.1",
	"(tcp port 80 or udp port 53) and host 10.0.0.1", "tcp port 80 or (udp port 53 and host 10.0.0.1)",
	"host 10.0.0.1 and (port 80 or port 22)", "not (port 80 or port 22)", "not host 127.0.0.1 and udp",
	"udp and not port 53", "port 80 and not host 127.0.0.1", "tcp or udp", "! port 22",
	"port 80 && host 10.0.0.1", "port 80 || port 22", "not not udp", "not tcp and not udp",
	"((udp))", "udp port 5353 or tcp port 80 and not src host 127.0.0.1 or port 1234",
}

// TestCompileAgreesWithTcpdump runs both compilers: libpcap's (its
// programs adapted to cooked sockets here) and the fallback.
func TestCompileAgreesWithTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("EPHEM_E2E") == "1" {
			t.Fatalf("tcpdump (Debian's package, run as root) is needed to check filters: %v", err)
		}
		t.Skip("needs tcpdump and root")
	}
	needLibpcap(t)
	pkts := testPackets()
	for _, expr := range agreed {
		for _, cooked := range []bool{false, true} {
			want := tcpdumpProgram(t, expr, cooked)
			for _, fallback := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/cooked=%v/fallback=%v", expr, cooked, fallback), func(t *testing.T) {
					withoutLibpcap = fallback
					defer func() { withoutLibpcap = false }()
					got, err := Compile(expr, cooked, 262144)
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range pkts {
						frame, sll, l3, proto := p.frame, p.sll, p.frame[ethHeaderLen:], p.proto
						in := frame
						if cooked {
							in = sll
						}
						w := runRaw(t, want, in, 0)
						mine := frame
						if cooked {
							mine = l3
						}
						if g := runRaw(t, got, mine, proto); (g > 0) != (w > 0) {
							t.Errorf("%s: ephem's program says %v, tcpdump's %v", p.name, g > 0, w > 0)
						}
					}
				})
			}
		}
	}
}

// TestCompileRefuses: without libpcap, what the fallback does not compile
// is refused, saying how to get tcpdump's full syntax.
func TestCompileRefuses(t *testing.T) {
	withoutLibpcap = true
	defer func() { withoutLibpcap = false }()
	for expr, want := range map[string]string{
		"port":                 "not a primitive",
		"port 99999":           "0 to 65535",
		"(":                    "ends where a primitive",
		"(udp":                 "not closed",
		"udp)":                 `unexpected ")"`,
		"garbage words":        "not a primitive",
		"tcp[13] & 2 != 0":     "not a primitive",
		"icmp":                 "not a primitive",
		"host db.local":        "must be an IP address",
		"tcp host 10.0.0.1":    "no host after tcp",
		"ip port 80":           "no port after ip",
		"udp and":              "ends where",
		"and udp":              "unexpected",
		"ip host fe80::1":      "family",
		"host ::1":             "leading zero",
		"port 80 or or port 1": "unexpected",
	} {
		_, err := Compile(expr, false, 262144)
		if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), strconv.Quote(expr)) {
			t.Errorf("%q: %v, want an ErrFilter naming the filter and saying %q", expr, err, want)
		}
	}
	if _, err := Compile("icmp", true, 262144); err == nil || !strings.Contains(err.Error(), "install libpcap (Debian: libpcap0.8)") {
		t.Errorf("icmp without libpcap: %v, want a refusal saying to install libpcap", err)
	}
	if p, err := Compile("  ", true, 1); p != nil || err != nil {
		t.Errorf("an empty filter: %v %v, want no program", p, err)
	}
}

// tcpdumpProgram is libpcap's program for expr, on Ethernet or Linux
// cooked (SLL) headers.
func tcpdumpProgram(t *testing.T, expr string, cooked bool) []bpf.RawInstruction {
	t.Helper()
	args := []string{"-i", "lo", "-ddd", expr}
	if cooked {
		args = []string{"-i", "any", "-y", "LINUX_SLL", "-ddd", expr}
	}
	out, err := exec.Command("tcpdump", args...).Output()
	if err != nil {
		t.Fatalf("tcpdump %v: %v", args, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Scan() // the count
	var prog []bpf.RawInstruction
	for sc.Scan() {
		var v [4]uint32
		for i, f := range strings.Fields(sc.Text()) {
			n, _ := strconv.ParseUint(f, 10, 32)
			v[i] = uint32(n)
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: v[3]})
	}
	return prog
}

// runRaw runs prog on pkt; the kernel's protocol extension, which the
// package's VM lacks, loads proto.
func runRaw(t *testing.T, prog []bpf.RawInstruction, pkt []byte, proto uint16) int {
	t.Helper()
	ins, _ := bpf.Disassemble(prog)
	for i, in := range ins {
		if e, ok := in.(bpf.LoadExtension); ok && e.Num == bpf.ExtProto {
			ins[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: uint32(proto)}
		}
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("loading the program: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("running the program: %v", err)
	}
	return n
}

type testPacket struct {
	name       string
	frame, sll []byte
	proto      uint16
}

// testPackets are Ethernet frames of TCP and UDP over IPv4 and IPv6
// between a few addresses and ports, fragments, ICMP and ARP, each also
// with a cooked header instead of the Ethernet one.
func testPackets() []testPacket {
	var ps []testPacket
	add := func(name string, ethType uint16, l3 []byte) {
		frame := make([]byte, ethHeaderLen, ethHeaderLen+len(l3))
		copy(frame, []byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0x66, 0x77, 0x88, 0x99, 0xaa})
		binary.BigEndian.PutUint16(frame[12:], ethType)
		frame = append(frame, l3...)
		sll := append(SLLHeader(0, 1, frame[6:12], ethType), l3...)
		ps = append(ps, testPacket{name: name, frame: frame, sll: sll, proto: ethType})
	}
	ips := []string{"127.0.0.1", "10.0.0.1", "10.1.2.3"}
	ports := []uint16{22, 53, 80, 1234, 5353}
	for _, proto := range []byte{6, 17} {
		for _, s := range ips {
			for _, d := range ips {
				for _, sp := range ports {
					for _, dp := range ports {
						add(fmt.Sprintf("ip4 %d %s.%d > %s.%d", proto, s, sp, d, dp), 0x0800, ip4(proto, s, d, sp, dp, 0))
					}
				}
			}
		}
		for _, sp := range ports {
			add(fmt.Sprintf("ip6 %d ::1.%d > fe80::1.80", proto, sp), 0x86dd, ip6(proto, "::1", "fe80::1", sp, 80))
			add(fmt.Sprintf("ip6 %d fe80::1.80 > fe80::2.%d", proto, sp), 0x86dd, ip6(proto, "fe80::1", "fe80::2", 80, sp))
			add(fmt.Sprintf("ip4 fragment %d .%d", proto, sp), 0x0800, ip4(proto, "10.0.0.1", "10.1.2.3", sp, 80, 1))
		}
	}
	add("icmp", 0x0800, ip4(1, "10.0.0.1", "127.0.0.1", 0, 0, 0))
	add("icmp6", 0x86dd, ip6(58, "::1", "::1", 0, 0))
	arp := make([]byte, 28)
	copy(arp[14:], []byte{10, 0, 0, 1})
	copy(arp[24:], []byte{127, 0, 0, 1})
	add("arp", 0x0806, arp)
	return ps
}

func l4(proto byte, sp, dp uint16) []byte {
	b := make([]byte, 8)
	if proto == 6 {
		b = make([]byte, 20)
		b[12] = 5 << 4
	}
	binary.BigEndian.PutUint16(b[0:], sp)
	binary.BigEndian.PutUint16(b[2:], dp)
	return b
}

func ip4(proto byte, src, dst string, sp, dp, frag uint16) []byte {
	h := make([]byte, 20)
	h[0], h[9] = 0x45, proto
	binary.BigEndian.PutUint16(h[6:], frag)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	p := l4(proto, sp, dp)
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(p)))
	return append(h, p...)
}

func ip6(proto byte, src, dst string, sp, dp uint16) []byte {
	h := make([]byte, 40)
	h[0], h[6] = 0x60, proto
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	p := l4(proto, sp, dp)
	binary.BigEndian.PutUint16(h[4:], uint16(len(p)))
	return append(h, p...)
}
