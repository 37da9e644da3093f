// Package buildinfo is what a build of ephem says about itself: its version
// and commit, stamped by hack/release.sh with
//
//	-ldflags "-X github.com/ephem-dev/ephem/internal/buildinfo.version=v1.2.3
//	          -X github.com/ephem-dev/ephem/internal/buildinfo.commit=SHA
//	          -X github.com/ephem-dev/ephem/internal/buildinfo.date=2026-01-02T03:04:05Z"
//
// and otherwise read from the Go toolchain's VCS stamp (a plain go build in
// a git checkout), with "dev" as the version.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Stamped at link time by hack/release.sh; empty in other builds.
var (
	version string
	commit  string
	date    string
)

// Info is one build's identity.
type Info struct {
	// Version is the release's version, or "dev" for an unstamped build.
	Version string `json:"version"`
	// Commit is the source commit, with "-dirty" when the tree had changes;
	// empty when unknown.
	Commit string `json:"commit"`
	// Date is the build date (the commit's time in a release), RFC 3339;
	// empty when unknown.
	Date string `json:"date,omitempty"`
	// Go is the toolchain's version, such as go1.26.8.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns this binary's Info.
func Get() Info {
	info := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit, info.Date = fromVCS(info.Date)
	}
	return info
}

// fromVCS reads the commit and its time from the Go toolchain's VCS stamp.
func fromVCS(date string) (commit, when string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", date
	}
	when = date
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			if when == "" {
				when = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if commit != "" && dirty {
		commit += "-dirty"
	}
	return commit, when
}
