// Package kube is ephem's Kubernetes backend: it adds an ephemeral debug
// container to a running pod through the pods/ephemeralcontainers
// subresource, as kubectl debug does, once an access review says the user
// can reach it (a refused patch adds nothing, and says what admission or
// RBAC objected to); waits for it without hanging; attaches
// or streams its output; and returns its exit code. Workload references
// resolve to their pods; a selector fans out over many.
package kube
