package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// apiServer answers the lists completion asks for; /slow never in time.
func apiServer(t *testing.T) *rest.Config {
	t.Helper()
	lists := map[string]string{
		"/api/v1/namespaces/shop/pods":              `{"items":[{"metadata":{"name":"web-1"},"status":{"phase":"Running"}},{"metadata":{"name":"db-0"},"status":{"phase":"Pending"}}]}`,
		"/apis/apps/v1/namespaces/shop/deployments": `{"items":[{"metadata":{"name":"web"}}]}`,
		"/api/v1/nodes":                             `{"items":[{"metadata":{"name":"node-a"}}]}`,
		"/api/v1/namespaces":                        `{"items":[{"metadata":{"name":"shop"},"status":{"phase":"Active"}},{"metadata":{"name":"default"}}]}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/namespaces/slow/pods" {
			time.Sleep(2 * completeTimeout)
		}
		body, ok := lists[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

func values(t *testing.T, cs []string, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestCompleteTargetsKube(t *testing.T) {
	b := NewForClient(Options{}, nil, apiServer(t), "shop")
	for _, tc := range []struct {
		word string
		want []string
	}{
		{"", []string{"pod/", "deployment/", "statefulset/", "daemonset/", "node/"}},
		{"d", []string{"deployment/", "daemonset/"}},
		{"pod/", []string{"pod/db-0", "pod/web-1"}},
		{"pod/w", []string{"pod/web-1"}},
		{"deployment/", []string{"deployment/web"}},
		{"node/", []string{"node/node-a"}},
		{"docker://", nil},
	} {
		cs, err := b.CompleteTargets(context.Background(), tc.word)
		var got []string
		for _, c := range cs {
			got = append(got, c.Value)
		}
		if got = values(t, got, err); !slices.Equal(got, tc.want) {
			t.Errorf("CompleteTargets(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	cs, err := b.CompleteFlag(context.Background(), "namespace", "s")
	if err != nil || len(cs) != 1 || cs[0].Value != "shop" || cs[0].Description != "Active" {
		t.Errorf("CompleteFlag(namespace, s) = %v, %v; want shop", cs, err)
	}
	if cs, err := b.CompleteFlag(context.Background(), "context", ""); cs != nil || err != nil {
		t.Errorf("CompleteFlag(context) = %v, %v; want nothing", cs, err)
	}
}

func TestCompleteTargetsKubeBounded(t *testing.T) {
	b := NewForClient(Options{}, nil, apiServer(t), "slow")
	start := time.Now()
	if _, err := b.CompleteTargets(context.Background(), "pod/"); err == nil || time.Since(start) > completeTimeout+time.Second {
		t.Errorf("a slow API server: %v after %v, want an error within %v", err, time.Since(start), completeTimeout)
	}
}
