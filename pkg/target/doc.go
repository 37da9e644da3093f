// Package target parses target references ("pid:4242", "docker://web",
// "pod/web") and resolves local ones to the process whose namespaces a
// debug container joins. Schemes are registered in one table so new
// runtimes (containerd, podman, CRI) add a row, not a branch.
package target
