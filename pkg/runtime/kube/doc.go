// Package kube is ephem's Kubernetes backend: it adds an ephemeral debug
// container to a running pod through the pods/ephemeralcontainers
// subresource, as kubectl debug does, after a dry-run preflight that reports
// what admission or RBAC would refuse; waits for it without hanging; attaches
// or streams its output; and returns its exit code. Workload references
// resolve to their pods; a selector fans out over many.
package kube
