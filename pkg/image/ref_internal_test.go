package image

import (
	"net/http"
	"net/url"
	"testing"
)

func TestIsInsecure(t *testing.T) {
	tests := []struct {
		host     string
		insecure []string
		want     bool
	}{
		{"localhost:5000", nil, true},
		{"localhost", nil, true},
		{"127.0.0.1:5000", nil, true},
		{"127.1.2.3", nil, true},
		{"[::1]:5000", nil, true},
		{"index.docker.io", nil, false},
		{"10.0.0.5:5000", nil, false},
		{"registry.lan:5000", []string{"registry.lan:5000"}, true},
		{"registry.lan:5000", []string{"registry.lan"}, true},
		{"registry.lan:5000", []string{"other.lan"}, false},
	}
	for _, tc := range tests {
		if got := isInsecure(tc.host, tc.insecure); got != tc.want {
			t.Errorf("isInsecure(%q, %v) = %v, want %v", tc.host, tc.insecure, got, tc.want)
		}
	}
}

func TestParseReferenceScheme(t *testing.T) {
	for ref, want := range map[string]string{
		"registry.lan:5000/tools": "https",
		"localhost:5000/tools":    "http",
	} {
		r, err := ParseReference(ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.reg.Context().Scheme(); got != want {
			t.Errorf("%s: scheme %s, want %s", ref, got, want)
		}
	}
	r, err := ParseReference("registry.lan:5000/tools", []string{"registry.lan:5000"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.reg.Context().Scheme(); got != "http" {
		t.Errorf("listed insecure registry: scheme %s, want http", got)
	}
}

// okTransport answers every request without any network access.
type okTransport struct{}

func (okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

func TestPlainHTTPGuard(t *testing.T) {
	g := plainHTTPGuard{base: okTransport{}, insecure: []string{"registry.lan:5000"}}
	for u, allowed := range map[string]bool{
		"http://10.1.2.3:5000/v2/":         false, // go-containerregistry would fall back to HTTP here
		"http://registry.example.com/v2/":  false,
		"https://registry.example.com/v2/": true,
		"http://registry.lan:5000/v2/":     true,
		"http://127.0.0.1:5000/v2/":        true,
		"http://localhost:5000/v2/":        true,
	} {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := g.RoundTrip(req)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if got := err == nil; got != allowed {
			t.Errorf("%s: allowed = %v (%v), want %v", u, got, err, allowed)
		}
		// The HTTP client wraps the refusal in a *url.Error: unreachable.
		if err != nil && !isNetError(&url.Error{Op: "Get", URL: u, Err: err}) {
			t.Errorf("%s: the refusal would not classify as unreachable", u)
		}
	}
}
