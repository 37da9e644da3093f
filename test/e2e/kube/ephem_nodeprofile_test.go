//go:build e2e_kube

package kube_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestEphemNodeProfiles: on a node, the profile decides what of the host the
// debugging pod shares, as with kubectl: netadmin the host's namespaces but
// not its root, baseline neither.
func TestEphemNodeProfiles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	nodeName := firstNode(ctx, t)
	node := "node/" + nodeName
	script := "cat /proc/1/comm; test -d /host/etc && echo has-host || echo no-host"
	out := mustEphem(t, ns, "debug", node, "--profile", "netadmin", "--image", cluster.Image("busybox"), "--", "sh", "-c", script)
	if strings.HasPrefix(out, "sh\n") || !strings.Contains(out, "no-host") {
		t.Errorf("netadmin on a node: %q, want the host's PID 1 and no /host", out)
	}
	out = mustEphem(t, ns, "debug", node, "--profile", "baseline", "--image", cluster.Image("busybox"), "--", "sh", "-c", script)
	if !strings.HasPrefix(out, "sh\n") || !strings.Contains(out, "no-host") {
		t.Errorf("baseline on a node: %q, want its own PID namespace (sh as PID 1) and no /host", out)
	}
}

// TestEphemNodeDetachAttach: a node debugging pod a user detached from is
// kept, and ephem attach reattaches to it.
func TestEphemNodeDetachAttach(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t, nil)
	nodeName := firstNode(ctx, t)
	term := ephemTTY(t, ns, "debug", "node/"+nodeName, "-it", "--image", cluster.Image("busybox"), "--", "sh")
	term.send(t, "\r")
	term.expect(t, "# ")
	term.send(t, "\x10\x11")
	if code := term.wait(t); code != 0 {
		t.Fatalf("detach: exit %d:\n%s", code, term.screen())
	}
	term.expect(t, "reattach with: ephem attach pod/")
	ref := regexp.MustCompile(`ephem attach (pod/node-debugger-\S+/\S+)`).FindStringSubmatch(term.screen())
	if ref == nil {
		t.Fatalf("no reattach command:\n%s", term.screen())
	}
	again := ephemTTY(t, ns, "attach", ref[1])
	again.send(t, "\r")
	again.expect(t, "# ")
	again.send(t, "echo node-$((4+4)); exit 4\r")
	again.expect(t, "node-8")
	if code := again.wait(t); code != 4 {
		t.Errorf("attach: exit %d, want 4:\n%s", code, again.screen())
	}
}
