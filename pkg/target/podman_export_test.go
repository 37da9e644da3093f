package target

import "testing"

// HidePodmanForTest makes the podman search find no podman on this host
// (its storages are looked for under an empty directory) until t ends, so
// that tests of the bare-NAME search see only their fake runtimes.
func HidePodmanForTest(t testing.TB) {
	old := podmanRoot
	podmanRoot = t.TempDir()
	t.Cleanup(func() { podmanRoot = old })
}
