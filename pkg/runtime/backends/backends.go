// Package backends registers every ephem backend, in the order their
// target forms are listed in help and errors: the local engine (the
// default), then Kubernetes. Import it for its side effect, as
// database/sql drivers are: a new backend is one package plus one line
// here.
//
// Built with the tag ephem_local (the release's ephem), it registers the
// local engine only: a binary without client-go is 18 MB instead of 31,
// starts in about half the time and peaks at about 20 MB of RSS instead
// of 33 (docs/benchmarks.md). It hands command lines that may need
// Kubernetes to kubectl-ephem, the build with every backend
// (internal/cli/dispatch.go).
package backends
