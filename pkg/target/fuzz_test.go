package target_test

import (
	"errors"
	"testing"

	_ "github.com/ephem-dev/ephem/pkg/runtime/backends" // the registered forms
	"github.com/ephem-dev/ephem/pkg/target"
)

// FuzzParse: any input either parses into a reference that parses again to
// itself, or fails with ErrInvalid; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"pid:1", "pid:4242", "docker://web", "docker://0123abcd", "pod/web", "po/web/app",
		"k8s://ns/web/app", "deploy/nginx", "sts/db", "node/n1", "", "pid:", "pid:-1", "k8s://a/b/c/d", "docker://a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := target.Parse(s)
		if err != nil {
			if !errors.Is(err, target.ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if r.Raw != s || r.Scheme == "" || r.Name == "" {
			t.Fatalf("Parse(%q) = %+v: want Raw, Scheme and Name set", s, r)
		}
		again, err := target.Parse(r.Raw)
		if err != nil || again != r {
			t.Fatalf("Parse(%q) is not stable: %+v then %+v, %v", s, r, again, err)
		}
	})
}
