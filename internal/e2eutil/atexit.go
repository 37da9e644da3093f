package e2eutil

// AtExit registers f to run when the test binary ends under Main, after the
// tests and before the shared resources set up earlier are released.
func AtExit(f func()) {
	process.mu.Lock()
	defer process.mu.Unlock()
	process.cleanups = append(process.cleanups, f)
}
