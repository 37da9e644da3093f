package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/ephem-dev/ephem/pkg/runtime"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ErrDenied marks a change admission (PodSecurity, a webhook) refuses.
var ErrDenied = fmt.Errorf("%w: refused by admission", runtime.ErrPermission)

// addContainer patches ec into p's ephemeral containers and returns the
// pod the API server answers with. The API server applies the patch whole
// or refuses it whole: a refusal (admission, RBAC, an invalid container)
// says that nothing was added.
func (b *call) addContainer(ctx context.Context, p *corev1.Pod, ec *corev1.EphemeralContainer) (*corev1.Pod, error) {
	patch, err := ephemeralPatch(p, ec)
	if err != nil {
		return nil, err
	}
	out, err := b.client.PatchEphemeralContainers(ctx, p.Namespace, p.Name, patch)
	if err != nil {
		err = b.patchError(err, p, ec)
		if refused(err) {
			return nil, fmt.Errorf("refused (nothing was added to pod %s): %w", p.Name, err)
		}
		return nil, err
	}
	return out, nil
}

// ephemeralPatch is the strategic merge patch adding ec to p's ephemeral
// containers: the list merges by name, so the new one is appended (kubectl
// sends the same, with a $setElementOrder that restates the order).
func ephemeralPatch(p *corev1.Pod, ec *corev1.EphemeralContainer) ([]byte, error) {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []*corev1.EphemeralContainer{ec}}})
	if err != nil {
		return nil, fmt.Errorf("creating the patch for pod %s: %w", p.Name, err)
	}
	return patch, nil
}

var podSecurityLevel = regexp.MustCompile(`violates PodSecurity "([a-z]+)`)

// patchError explains why the API server refused the ephemeral container,
// with the fix.
func (b *call) patchError(err error, p *corev1.Pod, ec *corev1.EphemeralContainer) error {
	msg := apiMessage(err)
	switch {
	case apierrors.IsNotFound(err) && strings.Contains(msg, "ephemeralcontainers"),
		apierrors.IsNotFound(err) && !strings.Contains(msg, p.Name),
		apierrors.IsMethodNotSupported(err):
		return fmt.Errorf("%w (the pods/ephemeralcontainers subresource is missing: Kubernetes 1.25+ has it on by default)", ErrDisabled)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: pod %s was deleted", runtime.ErrTargetGone, p.Name)
	case apierrors.IsForbidden(err) && strings.Contains(msg, "PodSecurity"):
		fix := "use a profile the namespace admits"
		if m := podSecurityLevel.FindStringSubmatch(msg); m != nil {
			switch m[1] {
			case "restricted":
				fix = "namespace enforces restricted: use --profile restricted"
			case "baseline":
				fix = "namespace enforces baseline: use --profile baseline or restricted"
			}
		}
		return fmt.Errorf("%w: %s: %s", ErrDenied, fix, msg)
	case apierrors.IsForbidden(err) && strings.Contains(msg, "admission webhook"):
		return fmt.Errorf("%w: an admission webhook refused the debug container: %s", ErrDenied, msg)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: you may not add ephemeral containers in namespace %s (RBAC: verb patch on pods/ephemeralcontainers): %s", runtime.ErrPermission, p.Namespace, msg)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%w: the API server rejected container %s: %s", runtime.ErrInvalidSpec, ec.Name, msg)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the API server did not accept your credentials: %s", runtime.ErrPermission, msg)
	}
	return apiFailure(err, "adding the debug container to pod %s", p.Name)
}

// checkAccess asks the API server whether the user may do what the session
// needs after the patch: attach for -i, read logs otherwise.
func (b *call) checkAccess(ctx context.Context, ns string, interactive bool) error {
	attr := &authv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "log"}
	if interactive {
		attr.Verb, attr.Subresource = "create", "attach"
	}
	allowed, err := b.reviews.allowed(ctx, b.client, attr)
	if err != nil {
		return nil // the review API is unavailable: let the real calls decide
	}
	if !allowed {
		return fmt.Errorf("%w: you may not %s pods/%s in namespace %s (RBAC), so the debug container would be added but unreachable: ask for that permission", runtime.ErrPermission, attr.Verb, attr.Subresource, ns)
	}
	return nil
}

// reviewCache answers each access question once for the pods of a
// fan-out: they share a namespace and a verb, and asking 30 times is 30
// requests for one answer. A nil cache asks every time.
type reviewCache struct {
	mu      sync.Mutex
	answers map[authv1.ResourceAttributes]*review
}

type review struct {
	once    sync.Once
	allowed bool
	err     error
}

func (c *reviewCache) allowed(ctx context.Context, client Client, attr *authv1.ResourceAttributes) (bool, error) {
	if c == nil {
		return client.Allowed(ctx, attr)
	}
	c.mu.Lock()
	if c.answers == nil {
		c.answers = map[authv1.ResourceAttributes]*review{}
	}
	r := c.answers[*attr]
	if r == nil {
		r = &review{}
		c.answers[*attr] = r
	}
	c.mu.Unlock()
	r.once.Do(func() { r.allowed, r.err = client.Allowed(ctx, attr) })
	return r.allowed, r.err
}
