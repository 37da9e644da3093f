package buildinfo

import (
	"runtime"
	"testing"
)

func TestGetStamped(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "v1.2.3", "abc123", "2026-01-02T03:04:05Z"
	got := Get()
	want := Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-01-02T03:04:05Z", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if got != want {
		t.Errorf("Get() = %+v, want %+v", got, want)
	}
}

func TestGetUnstamped(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "", "", ""
	if got := Get(); got.Version != "dev" || got.Go != runtime.Version() {
		t.Errorf("Get() = %+v, want version dev and go %s", got, runtime.Version())
	}
}
