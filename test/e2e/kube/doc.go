// Package kube is the harness for ephem's end-to-end tests on a real
// single-node Kubernetes cluster (hack/cluster/up.sh): it finds the
// cluster's kubeconfig, registry and matching kubectl, starts the cluster
// when it is not running, creates a namespace per test, and deploys and waits
// for the seed's workloads (a shell-less "distroless" HTTP server and an
// nginx-like busybox httpd).
//
// The tests themselves need the build tag e2e_kube:
//
//	go test -tags e2e_kube ./test/e2e/kube/... -count=1 -v
//
// and the up/down/up lifecycle test the tag e2e_kube_lifecycle.
package kube
