//go:build !linux || !cgo || static

package pcap

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// libpcapBuilt says whether this build can load libpcap at all.
const libpcapBuilt = false

// libpcapCompile is libpcap's compiler, which a static build (a release
// binary) or one without cgo cannot load: it always returns an
// errNoLibpcap error.
func libpcapCompile(string, LinkType, uint32) ([]bpf.RawInstruction, error) {
	return nil, fmt.Errorf("loading libpcap: %w (this ephem is a static build, which cannot load it; a build with go build can)", errNoLibpcap)
}
