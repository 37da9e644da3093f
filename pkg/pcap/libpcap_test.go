package pcap

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"
)

// needLibpcap skips t without libpcap, and fails it when end-to-end tests
// are asked for (EPHEM_E2E=1), where libpcap0.8 is installed.
func needLibpcap(t *testing.T) {
	t.Helper()
	if _, err := libpcapCompile("ip", LinkEthernet, 1); errors.Is(err, errNoLibpcap) {
		if os.Getenv("EPHEM_E2E") == "1" {
			t.Fatalf("libpcap (Debian: libpcap0.8) is needed: %v", err)
		}
		t.Skipf("needs libpcap: %v", err)
	}
}

// needTcpdump is needLibpcap for Debian's tcpdump.
func needTcpdump(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv("EPHEM_E2E") == "1" {
			t.Fatalf("Debian's tcpdump is needed: %v", err)
		}
		t.Skip("needs tcpdump")
	}
}

// libpcapFilters are beyond the fallback compiler.
var libpcapFilters = []string{
	"icmp", "tcp[tcpflags] & tcp-syn != 0", "portrange 8000-8100", "vlan and udp", "udp and not port 53",
	"arp or icmp6", "ip[8] < 64 and not ip6", "tcp[13] & 2 != 0",
}

// TestLibpcapMatchesTcpdump: libpcap as ephem loads it compiles each
// filter, for Ethernet and for Linux cooked headers, to the program
// Debian's tcpdump prints for it (-ddd) on a file of that link type,
// and on a device of it when run as root (but for vlan, which tcpdump
// compiles for the kernel's VLAN metadata on a device); both refuse
// alike what does not compile.
func TestLibpcapMatchesTcpdump(t *testing.T) {
	needLibpcap(t)
	needTcpdump(t)
	dir := t.TempDir()
	for _, lt := range []LinkType{LinkEthernet, LinkLinuxSLL} {
		file := filepath.Join(dir, strconv.Itoa(int(lt))+".pcap")
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewWriter(f, lt, 262144); err != nil {
			t.Fatal(err)
		}
		f.Close()
		for _, expr := range libpcapFilters {
			t.Run(strconv.Itoa(int(lt))+"/"+expr, func(t *testing.T) {
				got, err := libpcapCompile(expr, lt, 262144)
				want, terr := tcpdumpDump(t, "-r", file, expr)
				if (err != nil) != (terr != nil) {
					t.Fatalf("ephem's libpcap: %v; tcpdump: %v", err, terr)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("the programs differ (-tcpdump +ephem):\n%s", diff)
				}
				if os.Geteuid() != 0 || strings.Contains(expr, "vlan") {
					return
				}
				live := []string{"-i", "lo", "-y", "EN10MB"}
				if lt == LinkLinuxSLL {
					live = []string{"-i", "any", "-y", "LINUX_SLL"}
				}
				want, terr = tcpdumpDump(t, append(live, expr)...)
				if terr != nil || !cmp.Equal(want, got) {
					t.Errorf("tcpdump %v: %v, and the programs differ (-tcpdump +ephem):\n%s", live, terr, cmp.Diff(want, got))
				}
			})
		}
	}
}

// tcpdumpDump is tcpdump -ddd's program, or its error.
func tcpdumpDump(t *testing.T, args ...string) ([]bpf.RawInstruction, error) {
	t.Helper()
	out, err := exec.Command("tcpdump", append([]string{"-ddd"}, args...)...).Output()
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Scan() // the count
	var prog []bpf.RawInstruction
	for sc.Scan() {
		var v [4]uint32
		for i, f := range strings.Fields(sc.Text()) {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil || i > 3 {
				t.Fatalf("tcpdump -ddd printed %q", sc.Text())
			}
			v[i] = uint32(n)
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: v[3]})
	}
	return prog, nil
}

// TestCompileWithLibpcap: Compile takes what only libpcap compiles,
// adapting cooked programs as libpcap does for a cooked socket (network
// header first, protocol and packet type from the kernel), and refuses
// what a packet socket's filter cannot see.
func TestCompileWithLibpcap(t *testing.T) {
	needLibpcap(t)
	ld := func(size uint16, k uint32) bpf.RawInstruction {
		return bpf.RawInstruction{Op: classLD | modeABS | size, K: k}
	}
	const h, b = 0x08, 0x10 // BPF_H, BPF_B
	for _, c := range []struct {
		expr   string
		cooked bool
		want   []bpf.RawInstruction // the loads, in order
	}{
		{"icmp", false, []bpf.RawInstruction{ld(h, 12), ld(b, 23)}},
		{"icmp", true, []bpf.RawInstruction{ld(h, skfAdProtocol), ld(b, 9)}},
		{"ether[0] = 4", true, []bpf.RawInstruction{ld(b, skfAdPktType)}},
		{"inbound", true, []bpf.RawInstruction{ld(h, skfAdPktType)}},
	} {
		prog, err := Compile(c.expr, c.cooked, 262144)
		if err != nil {
			t.Errorf("%q cooked=%v: %v", c.expr, c.cooked, err)
			continue
		}
		var loads []bpf.RawInstruction
		for _, in := range prog {
			if in.Op&0x07 == classLD && in.Op&0xe0 == modeABS {
				loads = append(loads, in)
			}
		}
		if diff := cmp.Diff(c.want, loads); diff != "" {
			t.Errorf("%q cooked=%v: the loads differ (-want +got):\n%s", c.expr, c.cooked, diff)
		}
		if !slices.Contains(prog, bpf.RawInstruction{Op: 0x06, K: 262144}) { // ret #262144
			t.Errorf("%q: %v, want a program accepting 262144 bytes", c.expr, prog)
		}
	}
	for _, c := range []struct {
		expr   string
		cooked bool
		want   string
	}{
		{"vlan and udp", false, "VLAN tags"},
		{"not vlan", false, "VLAN tags"},
		{"vlan", true, "compiling with libpcap: no VLAN support"},
		{"ether[2] = 1", true, "link-layer header"},
		{"udp prt 53", false, "compiling with libpcap: can't parse filter expression"},
	} {
		_, err := Compile(c.expr, c.cooked, 262144)
		if !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), strconv.Quote(c.expr)) {
			t.Errorf("%q cooked=%v: %v, want an ErrFilter naming it and saying %q", c.expr, c.cooked, err, c.want)
		}
	}
}
