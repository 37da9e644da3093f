package kube

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/session"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/ephem-dev/ephem/pkg/target"
	"k8s.io/client-go/rest"
)

// TestAccessReviewBesideTheLookup: against a real HTTP/2 server, the
// access review is asked while the pod's get is still being answered, and
// both go over one connection (one TLS handshake).
func TestAccessReviewBesideTheLookup(t *testing.T) {
	var conns, reviews atomic.Int32
	reviewed := make(chan struct{})
	var once sync.Once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/namespaces/shop/pods/web":
			// Answer the get only once the review has come: they overlap.
			select {
			case <-reviewed:
			case <-time.After(5 * time.Second):
			}
			_, _ = w.Write([]byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"shop"},"status":{"phase":"Pending"}}`))
		case "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
			reviews.Add(1)
			once.Do(func() { close(reviewed) })
			_, _ = w.Write([]byte(`{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","status":{"allowed":true}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
	}}
	client, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := NewForClient(Options{}, client, cfg, "shop")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = b.Debug(ctx, target.Ref{Scheme: target.SchemePod, Name: "web"}, spec.Container{Image: "busybox", Command: []string{"true"}}, session.Streams{})
	if !errors.Is(err, target.ErrNotFound) {
		t.Fatalf("debug of a pending pod: %v, want its not-running error", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the get waited %v for the review: they did not overlap", d)
	}
	if n := reviews.Load(); n != 1 {
		t.Errorf("%d access reviews, want 1", n)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: the review and the get share the HTTP/2 connection", n)
	}
}
