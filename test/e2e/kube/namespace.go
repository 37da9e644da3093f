package kube

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace for the test t, with labels (for example
// pod-security.kubernetes.io/enforce), waits for its default service account,
// and deletes it, waiting until it is gone, when the test ends.
func (c *Cluster) Namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := c.CreateNamespace(ctx, t.Name(), labels)
	if name != "" {
		t.Cleanup(func() { c.deleteNamespace(t, name) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// CreateNamespace creates a namespace named after prefix with labels, and
// waits for its default service account. It returns the name even when
// waiting fails, so that the caller can delete the namespace.
func (c *Cluster) CreateNamespace(ctx context.Context, prefix string, labels map[string]string) (string, error) {
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(prefix), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	name := fmt.Sprintf("e2e-%s-%05d", base, rand.IntN(100000))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return name, Poll(ctx, "the default service account in "+name, func(ctx context.Context) (bool, string, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err), nil
	})
}

func (c *Cluster) deleteNamespace(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Pods first, without grace: the namespace then goes in seconds.
	zero := int64(0)
	err := c.Client.CoreV1().Pods(name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, listAll)
	if err != nil {
		t.Errorf("deleting pods in %s: %v", name, err)
	}
	if err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting namespace %s: %v", name, err)
		return
	}
	err = Poll(ctx, "namespace "+name+" to be deleted", func(ctx context.Context) (bool, string, error) {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, fmt.Sprint(err), nil
	})
	if err != nil {
		t.Error(err)
	}
}
