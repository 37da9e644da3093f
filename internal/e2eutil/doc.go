// Package e2eutil holds the helpers of ephem's end-to-end tests: a private
// Docker daemon (hack/dockerd.sh), a loopback registry, the test images of
// internal/testimages pushed or loaded where a test needs them, the ephem
// binary built once per test binary, and target processes in their own
// namespaces.
//
// Shared resources (the daemon, the ephem binary) are set up once per test
// binary. A package that uses them should have
//
//	func TestMain(m *testing.M) { e2eutil.Main(m) }
//
// so that they are released when the binary ends. Without it they are
// released in the t.Cleanup of the test that set them up, and set up again
// by the next test that asks, which is correct but slower.
//
// These tests need root and real components (dockerd, docker-registry,
// overlayfs). RequireRoot skips a test when not root, except under CI
// (CI=true) or EPHEM_E2E=1, where it fails it instead.
package e2eutil
