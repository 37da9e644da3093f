package kube

import (
	"fmt"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	corev1 "k8s.io/api/core/v1"
)

// debugEnv returns the env and envFrom of a debug container sharing
// targetName's namespaces in p: with --env-from-target the target
// container's own, as the pod spec has them (the kubelet resolves
// fieldRef, configMapKeyRef, secretKeyRef and envFrom for ephemeral
// containers too), then ephem's -e values, which the kubelet applies
// after them. The target's PATH is left out so that the tool image's
// finds the tools; one that envFrom brings cannot be, and -e PATH=...
// overrides it.
func debugEnv(p *corev1.Pod, c spec.Container, targetName string) ([]corev1.EnvVar, []corev1.EnvFromSource, error) {
	var env []corev1.EnvVar
	var from []corev1.EnvFromSource
	if c.EnvFromTarget {
		t, ok := containerNamed(p, targetName)
		if !ok {
			return nil, nil, fmt.Errorf("%w: --env-from-target: pod %s has no container %q to take the environment of", runtime.ErrUsage, p.Name, targetName)
		}
		env, from = targetEnv(t)
	}
	for _, e := range c.Env {
		env = append(env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	return env, from, nil
}

// targetEnv copies t's env (without PATH) and envFrom. A resourceFieldRef
// without a container name means the container's own resources: it is
// pinned to t, since the debug container has none.
func targetEnv(t *corev1.Container) ([]corev1.EnvVar, []corev1.EnvFromSource) {
	var env []corev1.EnvVar
	for _, e := range t.Env {
		if e.Name == "PATH" {
			continue
		}
		e = *e.DeepCopy()
		if r := resourceRef(e); r != nil && r.ContainerName == "" {
			r.ContainerName = t.Name
		}
		env = append(env, e)
	}
	var from []corev1.EnvFromSource
	for _, f := range t.EnvFrom {
		from = append(from, *f.DeepCopy())
	}
	return env, from
}

func resourceRef(e corev1.EnvVar) *corev1.ResourceFieldSelector {
	if e.ValueFrom == nil {
		return nil
	}
	return e.ValueFrom.ResourceFieldRef
}

// containerNamed returns p's regular container called name.
func containerNamed(p *corev1.Pod, name string) (*corev1.Container, bool) {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i], true
		}
	}
	return nil, false
}
