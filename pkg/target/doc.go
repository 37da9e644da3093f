// Package target parses target references ("pid:4242", "docker://web",
// "pod/web") through one table of schemes, and resolves host-process
// references to the process whose namespaces a debug container joins.
// Backends register the rows of the forms they act on (runtime.Register):
// a new runtime adds rows, not a branch.
package target
