package cli

import (
	"strings"
	"testing"
)

// TestNeedsFullBuild reads command lines as cobra does: flag values are
// skipped, the command after -- is not read, and what this build cannot
// run (help, completion, an unknown flag) is handed over. Targets of a
// form only the full build knows are checked end to end, with the local
// build (TestLocalOnlyBuild).
func TestNeedsFullBuild(t *testing.T) {
	root := NewRootCommand(&GlobalOptions{})
	for _, tc := range []struct {
		args string
		want bool
	}{
		{"version", false},
		{"debug pid:1 -- true", false},
		{"debug -it pid:1 -- sh", false},
		{"debug -qit --image reg/x pid:1 -- sh --nope", false},
		{"debug --image=reg/x --env A=1 pid:1", false},
		{"--cache-dir /x debug pid:1", false},
		{"debug pid:1 --nope", true},
		{"debug -Z pid:1", true},
		{"debug -iZ pid:1", true},
		{"debug --image --nope pid:1", false}, // --nope is --image's value
		{"debug --help", true},
		{"debug -h", true},
		{"debug -ih", true},
		{"help debug", true},
		{"__complete debug po", true},
		{"__completeNoDesc debug po", true},
		{"ls", false},
		{"ls --nope", true},
		{"images ls", false},
		{"nosuchcommand", false},
	} {
		if got := needsFullBuild(root, strings.Fields(tc.args)); got != tc.want {
			t.Errorf("needsFullBuild(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
