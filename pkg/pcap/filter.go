package pcap

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	pcfilter "github.com/packetcap/go-pcap/filter"
	"golang.org/x/net/bpf"
)

// ErrFilter marks a filter that does not compile.
var ErrFilter = errors.New("bad filter")

// Supported says which filters the fallback compiler takes, used when
// libpcap cannot be loaded, for error messages and help.
const Supported = "[ip|ip6] [src|dst] host ADDR, [src|dst] net CIDR, [tcp|udp] [src|dst] port N, tcp, udp, " +
	"joined with and/&&, or/||, not/! and parentheses"

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// ethHeaderLen is the length of the Ethernet header the primitives'
// programs are compiled for.
const ethHeaderLen = 14

// Compile compiles expr, a filter in tcpdump's syntax, to a classic BPF
// program for a Linux packet socket that accepts up to snaplen bytes of a
// matching packet. With cooked false the program reads packets that start
// with an Ethernet header (a SOCK_RAW packet socket on an Ethernet or
// loopback device; pcap link type EN10MB); with cooked true, packets that
// start at the network header (SOCK_DGRAM, as for -i any; written as
// LINUX_SLL), the protocol and packet type coming from the kernel's skb.
// An empty expr is no filter: nil.
//
// libpcap compiles the filter when it can be loaded (see libpcapCompile):
// all of tcpdump's syntax, host names resolved by this host's resolver,
// but for vlan on Ethernet (the kernel takes VLAN tags out of frames
// before the filter sees them) and link-layer fields but the protocol
// and packet type when cooked, which are refused. Without libpcap, a compiler of a subset (Supported) serves, and refuses
// the rest saying how to get the full syntax.
func Compile(expr string, cooked bool, snaplen uint32) ([]bpf.RawInstruction, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	prog, err := compileLibpcap(expr, cooked, snaplen)
	if errors.Is(err, errNoLibpcap) {
		return compileSubset(expr, cooked, snaplen)
	}
	return prog, err
}

// compileSubset is Compile without libpcap.
//
// As in tcpdump, "not" binds tightest and "and" and "or" have the same
// precedence, grouping left to right.
func compileSubset(expr string, cooked bool, snaplen uint32) ([]bpf.RawInstruction, error) {
	toks := tokenize(expr)
	if len(toks) == 0 {
		return nil, nil
	}
	p := &parser{toks: toks}
	tree, err := p.expr()
	if err == nil && p.pos < len(toks) {
		err = fmt.Errorf("unexpected %q", toks[p.pos])
	}
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrFilter, expr, err)
	}
	a := &assembler{}
	accept, reject := a.label(), a.label()
	if err := a.node(tree, accept, reject); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrFilter, expr, err)
	}
	a.place(accept)
	a.ins = append(a.ins, bpf.RetConstant{Val: snaplen})
	a.place(reject)
	a.ins = append(a.ins, bpf.RetConstant{Val: 0})
	ins, err := a.resolve()
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrFilter, expr, err)
	}
	if cooked {
		if ins, err = cook(ins); err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrFilter, expr, err)
		}
	}
	raw, err := bpf.Assemble(ins)
	if err != nil {
		return nil, fmt.Errorf("%w %q: assembling: %w", ErrFilter, expr, err)
	}
	return raw, nil
}

// tokenize splits expr into words, parentheses and the operators !, &&
// and ||.
func tokenize(expr string) []string {
	var toks []string
	word := strings.Builder{}
	flush := func() {
		if word.Len() > 0 {
			toks = append(toks, word.String())
			word.Reset()
		}
	}
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		case c == '(' || c == ')' || (c == '!' && !strings.HasPrefix(expr[i:], "!=")):
			flush()
			toks = append(toks, string(c))
		case strings.HasPrefix(expr[i:], "&&") || strings.HasPrefix(expr[i:], "||"):
			flush()
			toks = append(toks, expr[i:i+2])
			i++
		default:
			word.WriteByte(c)
		}
	}
	flush()
	return toks
}

// node is the parsed filter: a primitive (words), or an operator.
type node struct {
	op          string // "and", "or", "not" or "" for a primitive
	left, right *node
	words       []string
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

// expr := term { (and|or) term }, left to right.
func (p *parser) expr() (*node, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		op := map[string]string{"and": "and", "&&": "and", "or": "or", "||": "or"}[p.peek()]
		if op == "" {
			return left, nil
		}
		p.pos++
		right, err := p.term()
		if err != nil {
			return nil, err
		}
		left = &node{op: op, left: left, right: right}
	}
}

// term := (not|!) term | ( expr ) | primitive.
func (p *parser) term() (*node, error) {
	switch t := p.peek(); t {
	case "":
		return nil, errors.New("it ends where a primitive should follow")
	case "not", "!":
		p.pos++
		n, err := p.term()
		if err != nil {
			return nil, err
		}
		return &node{op: "not", left: n}, nil
	case "(":
		p.pos++
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("a ( is not closed")
		}
		p.pos++
		return n, nil
	case ")", "and", "&&", "or", "||":
		return nil, fmt.Errorf("unexpected %q where a primitive should be", t)
	}
	var words []string
	for {
		switch t := p.peek(); t {
		case "", "not", "!", "(", ")", "and", "&&", "or", "||":
			return &node{words: words}, checkPrimitive(words)
		default:
			words = append(words, t)
			p.pos++
		}
	}
}

// checkPrimitive accepts the primitives the compiler is known to get
// right, and says what is supported otherwise and how to get the rest.
func checkPrimitive(w []string) error {
	bad := func(why string) error {
		return fmt.Errorf("%q: %s (supported without libpcap: %s; for tcpdump's full syntax %s)",
			strings.Join(w, " "), why, Supported, libpcapHint())
	}
	if len(w) == 1 && (w[0] == "tcp" || w[0] == "udp") {
		return nil
	}
	proto := ""
	if len(w) > 0 && (w[0] == "ip" || w[0] == "ip6" || w[0] == "tcp" || w[0] == "udp") {
		proto, w = w[0], w[1:]
	}
	if len(w) > 0 && (w[0] == "src" || w[0] == "dst") {
		w = w[1:]
	}
	if len(w) != 2 {
		return bad("not a primitive ephem compiles")
	}
	switch kind, v := w[0], w[1]; kind {
	case "host":
		a, err := netip.ParseAddr(v)
		switch {
		case proto == "tcp" || proto == "udp":
			return bad("tcpdump takes no host after tcp or udp: write tcp and host ADDR")
		case err != nil || a.Zone() != "":
			return bad("the host must be an IP address (names would be resolved on this host, not in the target)")
		case (proto == "ip" && !a.Is4()) || (proto == "ip6" && !a.Is6()):
			return bad("the address is not of the " + proto + " family")
		case a.Is6() && strings.HasPrefix(v, "::"):
			return bad("IPv6 addresses starting with :: are not supported: write the leading zero (0::1)")
		}
	case "net":
		if proto == "tcp" || proto == "udp" {
			return bad("tcpdump takes no net after tcp or udp: write tcp and net CIDR")
		}
		pfx, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return bad("the net must be a CIDR prefix (10.0.0.0/8) or an address")
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		if strings.HasPrefix(v, "::") || (proto == "ip" && !pfx.Addr().Is4()) || (proto == "ip6" && !pfx.Addr().Is6()) {
			return bad("the net is not of a family ephem compiles here")
		}
	case "port":
		if proto == "ip" || proto == "ip6" {
			return bad("tcpdump takes no port after ip or ip6: write tcp port N or udp port N")
		}
		if n, err := strconv.ParseUint(v, 10, 16); err != nil || n > 65535 {
			return bad("the port must be a number from 0 to 65535")
		}
	default:
		return bad("not a primitive ephem compiles")
	}
	return nil
}

// assembler lays out the program: primitives' programs with their returns
// turned into jumps to labels, resolved at the end.
type assembler struct {
	ins    []bpf.Instruction
	labels []int       // label -> instruction index, -1 until placed
	fixups map[int]int // instruction index -> label it jumps to
}

func (a *assembler) label() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *assembler) place(l int) { a.labels[l] = len(a.ins) }

func (a *assembler) jump(l int) {
	if a.fixups == nil {
		a.fixups = map[int]int{}
	}
	a.fixups[len(a.ins)] = l
	a.ins = append(a.ins, bpf.Jump{})
}

// node lays out n so that it goes to label t when the packet matches and
// to f otherwise.
func (a *assembler) node(n *node, t, f int) error {
	switch n.op {
	case "not":
		return a.node(n.left, f, t)
	case "and", "or":
		mid := a.label()
		lt, lf := mid, f
		if n.op == "or" {
			lt, lf = t, mid
		}
		if err := a.node(n.left, lt, lf); err != nil {
			return err
		}
		a.place(mid)
		return a.node(n.right, t, f)
	}
	prog, err := compilePrimitive(strings.Join(n.words, " "))
	if err != nil {
		return err
	}
	for _, in := range prog {
		switch in := in.(type) {
		case bpf.RetConstant:
			if in.Val != 0 {
				a.jump(t)
			} else {
				a.jump(f)
			}
		case bpf.RetA:
			return fmt.Errorf("primitive %q: the compiler returned the accumulator", strings.Join(n.words, " "))
		default:
			a.ins = append(a.ins, in)
		}
	}
	return nil
}

// compilePrimitive compiles one primitive for Ethernet and checks that
// its program stays within itself.
func compilePrimitive(s string) ([]bpf.Instruction, error) {
	f := pcfilter.NewExpression(s).Compile()
	if f == nil {
		return nil, fmt.Errorf("%q does not compile", s)
	}
	prog, err := f.Compile()
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if _, err := bpf.NewVM(prog); err != nil {
		return nil, fmt.Errorf("%q compiles to an invalid program: %w", s, err)
	}
	return prog, nil
}

// resolve turns the label jumps into relative ones and checks the result.
func (a *assembler) resolve() ([]bpf.Instruction, error) {
	for at, l := range a.fixups {
		a.ins[at] = bpf.Jump{Skip: uint32(a.labels[l] - at - 1)}
	}
	if len(a.ins) > maxInstructions {
		return nil, fmt.Errorf("it compiles to %d instructions, more than the kernel's %d", len(a.ins), maxInstructions)
	}
	if _, err := bpf.NewVM(a.ins); err != nil {
		return nil, fmt.Errorf("it compiles to an invalid program: %w", err)
	}
	return a.ins, nil
}

// cook rewrites a program for Ethernet frames into one for packets that
// start at the network header, as libpcap does for cooked sockets: loads
// past the Ethernet header move back by its length, and the EtherType
// comes from the kernel (SKF_AD_PROTOCOL).
func cook(ins []bpf.Instruction) ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, len(ins))
	linkErr := errors.New("it reads the link-layer header, which -i any does not capture: name an interface with -i")
	for i, in := range ins {
		switch in := in.(type) {
		case bpf.LoadAbsolute:
			switch {
			case in.Off >= ethHeaderLen:
				in.Off -= ethHeaderLen
				out[i] = in
			case in.Off == 12 && in.Size == 2:
				out[i] = bpf.LoadExtension{Num: bpf.ExtProto}
			default:
				return nil, linkErr
			}
		case bpf.LoadIndirect:
			if in.Off < ethHeaderLen {
				return nil, linkErr
			}
			in.Off -= ethHeaderLen
			out[i] = in
		case bpf.LoadMemShift:
			if in.Off < ethHeaderLen {
				return nil, linkErr
			}
			in.Off -= ethHeaderLen
			out[i] = in
		default:
			out[i] = in
		}
	}
	return out, nil
}
