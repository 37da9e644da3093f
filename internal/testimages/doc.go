// Package testimages builds the container images ephem's tests run, offline
// and deterministically, from Debian packages and sources in this repository:
// a pause image from Kubernetes' pause.c, busybox, a shell-less "distroless"
// HTTP server, a toolbox with real debugging tools, and a large image for
// benchmarks. It also pushes images to, and runs, a plain-HTTP registry on
// 127.0.0.1 (Debian's docker-registry), and writes OCI layouts.
//
// Every builder takes a cache directory (see DefaultCacheDir); expensive
// artefacts are stored there under keys derived from their inputs, so a warm
// build is fast and yields the same digest.
package testimages
