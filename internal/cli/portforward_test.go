package cli

import (
	"errors"
	"testing"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/google/go-cmp/cmp"
)

func TestParsePortSpec(t *testing.T) {
	for in, want := range map[string]runtime.PortPair{
		"8080":                     {Protocol: "tcp", Local: 8080, Remote: 8080},
		"8080:80":                  {Protocol: "tcp", Local: 8080, Remote: 80},
		":80":                      {Protocol: "tcp", Local: 0, Remote: 80},
		"0:5353/udp":               {Protocol: "udp", Local: 0, Remote: 5353},
		"127.0.0.2:8080:80":        {Protocol: "tcp", LocalAddr: "127.0.0.2", Local: 8080, Remote: 80},
		"8080:10.0.0.5:80":         {Protocol: "tcp", Local: 8080, RemoteHost: "10.0.0.5", Remote: 80},
		"127.0.0.1:0:127.0.0.1:81": {Protocol: "tcp", LocalAddr: "127.0.0.1", Local: 0, RemoteHost: "127.0.0.1", Remote: 81},
		"[::1]:8080:[::1]:80/tcp":  {Protocol: "tcp", LocalAddr: "::1", Local: 8080, RemoteHost: "::1", Remote: 80},
	} {
		got, err := ParsePortSpec(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got.Protocol == "" {
			got.Protocol = "tcp"
		}
		if got.LocalAddr == "127.0.0.1" && want.LocalAddr == "" {
			got.LocalAddr = ""
		}
		if got.RemoteHost == "127.0.0.1" && want.RemoteHost == "" {
			got.RemoteHost = ""
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", in, diff)
		}
	}
	for _, in := range []string{"", "x", "70000", "80:0", "80/sctp", "8080:db.local:80", "1:2:3:4:5", "-1:80"} {
		if _, err := ParsePortSpec(in); !errors.Is(err, runtime.ErrUsage) {
			t.Errorf("%q: %v, want a usage error", in, err)
		}
	}
}
