package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// PortForwardOptions are the inputs of "ephem port-forward".
type PortForwardOptions struct {
	g *GlobalOptions

	TargetArg string
	Specs     []string

	flags   *pflag.FlagSet
	target  target.Ref
	backend backend
	ports   []runtime.PortPair
}

func newPortForwardCmd(g *GlobalOptions) *cobra.Command {
	o := &PortForwardOptions{g: g}
	cmd := &cobra.Command{
		Use:   "port-forward TARGET [LOCAL_ADDR:]LOCAL_PORT:[REMOTE_HOST:]REMOTE_PORT[/udp]...",
		Short: "Forward local ports to ports a target reaches, its own localhost included",
		Example: `  ephem port-forward pid:4242 8080:80
  ephem port-forward docker://web 8080:80 8053:53/udp 0.0.0.0:5432:10.0.0.7:5432
  ephem port-forward pid:4242 :80      # a free local port, printed
  ephem port-forward pod/web 8080:80 5432:10.0.0.7:5432`,
		Long: `Listen on local ports and relay each TCP connection, or each client's UDP
datagrams (PORT/udp), to REMOTE_HOST:REMOTE_PORT as the target sees it:
the connection is made inside the target's network namespace, so the
target's 127.0.0.1 (the default REMOTE_HOST) is reachable. Locally nothing
is started in the target and no container is needed. On Kubernetes (TCP
only) the pod's own localhost goes through the pods/portforward API, as
kubectl port-forward does; another REMOTE_HOST is relayed by nc in an idle
ephemeral container in the pod (added once, reused by later cp, ns,
capture and port-forward; --image names its tool image).

LOCAL_ADDR defaults to 127.0.0.1; LOCAL_PORT 0 (or empty) picks a free
port; a single PORT means PORT:PORT. Addresses are IP addresses (IPv6 in
brackets) or localhost. One line per forward is printed on stderr once all
listen, and one per connection that cannot be relayed. Ctrl-C ends the
forwards, closing every connection, and exits 0.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	g.backends.addFlags(runtime.VerbForward, cmd.Flags())
	o.flags = cmd.Flags()
	return cmd
}

// Complete fills the options from the arguments.
func (o *PortForwardOptions) Complete(args []string) error {
	if len(args) < 2 {
		return usageError("port-forward needs a target and at least one port: ephem port-forward TARGET [LOCAL_ADDR:]LOCAL_PORT:[REMOTE_HOST:]REMOTE_PORT[/udp]...")
	}
	o.TargetArg, o.Specs = args[0], args[1:]
	return nil
}

// Validate checks the options without I/O.
func (o *PortForwardOptions) Validate() error {
	seen := map[string]bool{}
	o.ports = nil
	for _, s := range o.Specs {
		p, err := ParsePortSpec(s)
		if err != nil {
			return err
		}
		key := p.Protocol + " " + p.LocalAddr + " " + strconv.Itoa(int(p.Local))
		if p.Local != 0 && seen[key] {
			return usageError("port %q: local port %d/%s is given twice", s, p.Local, p.Protocol)
		}
		seen[key] = true
		o.ports = append(o.ports, p)
	}
	var err error
	o.target, o.backend, err = o.g.backends.forTarget(o.TargetArg, o.flags)
	return err
}

// Run forwards through the target's backend until ctx ends.
func (o *PortForwardOptions) Run(ctx context.Context) error {
	fw, err := capability[runtime.Forwarder](o.g, o.backend, o.target, "port-forward", nil, image.PullOptions{})
	if err != nil {
		return err
	}
	return fw.Forward(ctx, o.target, o.ports, o.g.Streams.Err)
}

// ParsePortSpec parses [LOCAL_ADDR:]LOCAL_PORT:[REMOTE_HOST:]REMOTE_PORT[/udp]
// (or /tcp, the default), a single PORT (PORT:PORT) or :PORT (a free local
// port). With three fields the first is LOCAL_ADDR when it is an address,
// else LOCAL_PORT. Addresses are IP addresses, IPv6 in brackets, or
// localhost; defaults are 127.0.0.1 on both sides.
func ParsePortSpec(s string) (runtime.PortPair, error) {
	p := runtime.PortPair{Protocol: "tcp", LocalAddr: "127.0.0.1", RemoteHost: "127.0.0.1"}
	bad := func(why string) (runtime.PortPair, error) {
		return runtime.PortPair{}, usageError("port %q: %s: use [LOCAL_ADDR:]LOCAL_PORT:[REMOTE_HOST:]REMOTE_PORT[/udp]", s, why)
	}
	rest := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		rest, p.Protocol = s[:i], s[i+1:]
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return bad("the protocol is tcp or udp")
		}
	}
	f, ok := splitFields(rest)
	if !ok {
		return bad("an unclosed [")
	}
	var local, remote, laddr, rhost string
	switch len(f) {
	case 1:
		local, remote = f[0], f[0]
	case 2:
		local, remote = f[0], f[1]
	case 3:
		if _, err := strconv.ParseUint(f[0], 10, 16); err == nil || f[0] == "" {
			local, rhost, remote = f[0], f[1], f[2]
		} else {
			laddr, local, remote = f[0], f[1], f[2]
		}
	case 4:
		laddr, local, rhost, remote = f[0], f[1], f[2], f[3]
	default:
		return bad("too many fields")
	}
	var err error
	if p.Local, err = portNumber(local, true); err != nil {
		return bad("local port: " + err.Error())
	}
	if p.Remote, err = portNumber(remote, false); err != nil {
		return bad("remote port: " + err.Error())
	}
	if laddr != "" {
		if p.LocalAddr, err = ipAddr(laddr); err != nil {
			return bad("local address: " + err.Error())
		}
	}
	if rhost != "" {
		if p.RemoteHost, err = ipAddr(rhost); err != nil {
			return bad("remote host: " + err.Error())
		}
	}
	return p, nil
}

// splitFields splits s at colons outside brackets, removing the brackets.
func splitFields(s string) ([]string, bool) {
	var f []string
	for {
		var field string
		if strings.HasPrefix(s, "[") {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, false
			}
			field, s = "["+s[1:end]+"]", s[end+1:]
			if s != "" && s[0] != ':' {
				return nil, false
			}
		} else {
			i := strings.IndexByte(s, ':')
			if i < 0 {
				i = len(s)
			}
			field, s = s[:i], s[i:]
		}
		f = append(f, field)
		if s == "" {
			return f, true
		}
		s = s[1:] // the colon
	}
}

// portNumber parses a port: 1-65535, or 0 or empty when zero is allowed.
func portNumber(s string, zero bool) (uint16, error) {
	if s == "" && zero {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || (n == 0 && !zero) {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// ipAddr parses an IP address (IPv6 in brackets) or localhost.
func ipAddr(s string) (string, error) {
	if s == "localhost" {
		return "127.0.0.1", nil
	}
	v6 := strings.HasPrefix(s, "[")
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil || v6 != a.Is6() || a.Zone() != "" {
		return "", fmt.Errorf("%q is not an IP address (IPv6 in brackets) or localhost", s)
	}
	return a.String(), nil
}
