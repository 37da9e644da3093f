package image_test

import (
	"errors"
	"testing"

	"github.com/ephem-dev/ephem/pkg/image"
)

// FuzzParseReference: any --image value either parses, to a form that
// parses again to the same form, or fails with ErrInvalidReference.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:latest", "127.0.0.1:5000/a/b:c", "reg.example/x@sha256:" +
		"0000000000000000000000000000000000000000000000000000000000000000", "oci:/tmp/layout", "oci:/tmp/layout:v1",
		"docker-archive:/tmp/x.tar", "", ":", "UPPER/case", "oci:", "docker-archive:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := image.ParseReference(s, nil)
		if err != nil {
			if !errors.Is(err, image.ErrInvalidReference) {
				t.Fatalf("ParseReference(%q) error %v does not wrap ErrInvalidReference", s, err)
			}
			return
		}
		again, err := image.ParseReference(r.String(), nil)
		if err != nil || again.String() != r.String() {
			t.Fatalf("ParseReference(%q) = %q is not stable: %q, %v", s, r.String(), again.String(), err)
		}
	})
}
