package local_test

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// hostileRegistry serves the fixture's registry through a proxy on
// 127.0.0.1 that misbehaves as mode says, and returns its address.
func hostileRegistry(t *testing.T, f *fixture, mode string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if mode == "silent" { // accepts and never answers
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		return l.Addr().String()
	}
	up, _ := url.Parse("http://" + f.registry)
	proxy := httputil.NewSingleHostReverseProxy(up)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	var failures atomic.Int32
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blob := strings.Contains(r.URL.Path, "/blobs/")
		manifest := strings.Contains(r.URL.Path, "/manifests/")
		switch {
		case mode == "redirect" && blob:
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		case (mode == "stall-blob" && blob && r.Method == http.MethodGet) || (mode == "stall-manifest" && manifest):
			if manifest {
				w.Header().Set("Content-Length", "100000")
			} // a blob's is checked against the manifest: send it chunked
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			select { // stall mid-body until the client gives up
			case <-r.Context().Done():
			case <-done:
			}
		case mode == "reset" && blob && r.Method == http.MethodGet:
			// Accept the request, then reset the connection (RST, no answer).
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = c.(*net.TCPConn).SetLinger(0)
				_ = c.Close()
			}
		case mode == "flaky" && blob && failures.Add(1) <= 2:
			http.Error(w, "try again", http.StatusInternalServerError)
		default:
			proxy.ServeHTTP(w, r)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// TestHostileRegistry: no registry can keep ephem waiting. A redirect
// loop, a registry that accepts and never answers, one that stalls in the
// middle of a manifest or a blob, and one that resets the connection of
// every blob each end, within the bounds of
// --pull-timeout and the retries, with exit 68 and a line that says what
// happened, and nothing left in the cache; 500s that then succeed are
// retried.
func TestHostileRegistry(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	for _, tc := range []struct{ mode, want string }{
		{"redirect", "redirected 10 times"},
		{"silent", "sent nothing for 1s"},
		{"stall-manifest", "sent nothing for 1s"},
		{"stall-blob", "sent nothing for 1s"},
		{"reset", "connection reset"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			addr := hostileRegistry(t, f, tc.mode)
			cache := t.TempDir()
			start := time.Now()
			// The helper fails the test if ephem has not ended in a minute:
			// what is asserted is that it ends, not how fast.
			r := e2eutil.Ephem(t, f.bin, cache, time.Minute, "debug", tg.ref(), "-q", "--pull-timeout", "1s",
				"--image", addr+"/ephem/busybox:test", "--", "true")
			if r.ExitCode != 68 || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
				t.Errorf("exit %d after %s: %q, want 68 and one line saying %q", r.ExitCode, time.Since(start).Round(time.Millisecond), r.Stderr, tc.want)
			}
			assertNoLayers(t, cache)
		})
	}
	t.Run("flaky", func(t *testing.T) {
		addr := hostileRegistry(t, f, "flaky")
		r := e2eutil.Ephem(t, f.bin, t.TempDir(), time.Minute, "debug", tg.ref(), "-q", "--image", addr+"/ephem/busybox:test", "--", "echo", "pulled")
		if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "pulled" {
			t.Errorf("exit %d %q %q, want the pull retried and the command run", r.ExitCode, r.Stdout, r.Stderr)
		}
	})
}
