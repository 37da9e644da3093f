package spec_test

import (
	"testing"

	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestArgv(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"serve", "-v"}
	tests := []struct {
		name string
		c    spec.Container
		want []string
	}{
		{"image defaults", spec.Container{}, []string{"/entry", "serve", "-v"}},
		{"command replaces both", spec.Container{Command: []string{"sh", "-c", "id"}}, []string{"sh", "-c", "id"}},
		{"args replace cmd", spec.Container{Args: []string{"debug"}}, []string{"/entry", "debug"}},
		{"command and args", spec.Container{Command: []string{"ls"}, Args: []string{"/"}}, []string{"ls", "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.c.Argv(ep, cmd), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got := (spec.Container{}).Argv(nil, nil); len(got) != 0 {
		t.Errorf("no entrypoint, no cmd: got %q", got)
	}
}
