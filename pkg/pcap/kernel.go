package pcap

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/net/bpf"
)

// errNoLibpcap marks the errors of a libpcap that cannot be loaded, when
// the fallback compiler serves.
var errNoLibpcap = errors.New("libpcap cannot be loaded")

// withoutLibpcap makes Compile act as on a host without libpcap: a switch
// for tests.
var withoutLibpcap bool

// Offsets in a LINUX_SLL header, and the kernel's (SKF_AD_*) for what
// a cooked socket's filter cannot read from the packet.
const (
	sllPacketType = 0
	sllProtocol   = 14
	skfAdOff      = 0xfffff000 // SKF_AD_OFF, -0x1000
	skfAdProtocol = skfAdOff + 0
	skfAdPktType  = skfAdOff + 4
)

// libpcapHint says how to get tcpdump's full syntax, for the fallback
// compiler's refusals.
func libpcapHint() string {
	if !libpcapBuilt {
		return "use an ephem built with cgo and install libpcap (Debian: libpcap0.8)"
	}
	return "install libpcap (Debian: libpcap0.8)"
}

// compileLibpcap compiles expr with libpcap, for Ethernet frames or, with
// cooked, for LINUX_SLL packets, then adapts the program to what a
// packet socket's filter reads. Its error is an errNoLibpcap one when
// libpcap cannot be loaded, an ErrFilter one when the filter does not
// compile.
func compileLibpcap(expr string, cooked bool, snaplen uint32) ([]bpf.RawInstruction, error) {
	if withoutLibpcap {
		return nil, fmt.Errorf("loading libpcap: %w (switched off)", errNoLibpcap)
	}
	lt := LinkEthernet
	if cooked {
		lt = LinkLinuxSLL
	}
	prog, err := libpcapCompile(expr, lt, snaplen)
	if errors.Is(err, errNoLibpcap) {
		return nil, err
	}
	if err != nil && cooked {
		if _, eerr := libpcapCompile(expr, LinkEthernet, snaplen); eerr == nil {
			return nil, fmt.Errorf("%w %q: compiling with libpcap: %w (-i any captures Linux cooked headers, not Ethernet ones: "+
				"name an interface with -i)", ErrFilter, expr, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w %q: compiling with libpcap: %w", ErrFilter, expr, err)
	}
	if !cooked && hasWord(expr, "vlan") {
		// libpcap's live captures test the kernel's VLAN metadata, which
		// a program compiled without a device cannot.
		return nil, fmt.Errorf("%w %q: vlan: the kernel takes VLAN tags out of frames before a capture filter sees them, "+
			"so this filter would miss tagged packets; capture without vlan and filter the file (tcpdump -r FILE vlan)", ErrFilter, expr)
	}
	if cooked {
		if prog, err = fixCooked(prog); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrFilter, expr, err)
		}
	}
	if len(prog) == 0 || len(prog) > maxInstructions {
		return nil, fmt.Errorf("%w %q: libpcap compiled it to %d instructions (the kernel takes 1 to %d)",
			ErrFilter, expr, len(prog), maxInstructions)
	}
	return prog, nil
}

// fixCooked rewrites a program for LINUX_SLL packets into one for a
// cooked socket's packets, which start at the network header, as
// libpcap does before attaching it (fix_offset in pcap-linux.c): loads
// past the 16-byte header move back by its length, the packet type and
// protocol come from the kernel, and the rest of the header cannot be
// read.
func fixCooked(prog []bpf.RawInstruction) ([]bpf.RawInstruction, error) {
	out := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		class, mode := in.Op&0x07, in.Op&0xe0
		isLoad := class == classLD || class == classLDX
		if isLoad && (mode == modeABS || mode == modeIND || mode == modeMSH) && int32(in.K) >= 0 {
			switch {
			case in.K >= SLLHeaderLen:
				in.K -= SLLHeaderLen
			case in.K == sllPacketType:
				in.K = skfAdPktType
			case in.K == sllProtocol:
				in.K = skfAdProtocol
			default:
				return nil, errors.New("it reads the link-layer header, which -i any does not capture: name an interface with -i")
			}
		}
		out[i] = in
	}
	return out, nil
}

// Classic BPF opcode parts (linux/bpf_common.h).
const (
	classLD  = 0x00 // BPF_LD
	classLDX = 0x01 // BPF_LDX
	modeABS  = 0x20 // BPF_ABS
	modeIND  = 0x40 // BPF_IND
	modeMSH  = 0xa0 // BPF_MSH
)

// hasWord says whether word is one of expr's words.
func hasWord(expr, word string) bool {
	for _, w := range strings.FieldsFunc(expr, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}
