// Package local is ephem's embedded backend: it starts a debug container
// beside any process on this Linux host by joining the process's namespaces
// itself, with no daemon and no cluster.
//
// The host half (Engine) resolves the target, pulls the image into the
// content-addressed cache and re-executes ephem. The nsenter package's C
// constructor mounts the image and joins the namespaces instead of starting
// the Go runtime, and forks the container's init, C as well: it receives the
// config (config.go's encode), finishes the mounts, pivots into the image,
// drops to the container's credentials and runs the command as a subreaper,
// killing every process of the session when it ends or when ephem goes away.
// The two halves talk over a SOCK_SEQPACKET control socket (protocol.go).
package local
