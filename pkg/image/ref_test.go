package image_test

import (
	"errors"
	"testing"

	"github.com/ephem-dev/ephem/pkg/image"
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in       string
		insecure []string
		want     string
		kind     image.Kind
		err      error
	}{
		{in: "busybox", want: "index.docker.io/library/busybox:latest"},
		{in: "docker.io/library/busybox:1.36", want: "index.docker.io/library/busybox:1.36"},
		{in: "ghcr.io/team/tools@sha256:" + hex64, want: "ghcr.io/team/tools@sha256:" + hex64},
		{in: "localhost:5000/tools", want: "localhost:5000/tools:latest"},
		{in: "oci:/images/layout", want: "oci:/images/layout", kind: image.KindLayout},
		{in: "oci:/images/layout:v1", want: "oci:/images/layout:v1", kind: image.KindLayout},
		{in: "oci:/images/v1.2/layout", want: "oci:/images/v1.2/layout", kind: image.KindLayout},
		{in: "docker-archive:/tmp/a.tar", want: "docker-archive:/tmp/a.tar", kind: image.KindArchive},
		{in: "docker-archive:/tmp/a.tar:busybox:1", want: "docker-archive:/tmp/a.tar:busybox:1", kind: image.KindArchive},
		{in: "Bad Ref", err: image.ErrInvalidReference},
		{in: "busybox:", err: image.ErrInvalidReference},
		{in: "oci:", err: image.ErrInvalidReference},
		{in: "oci:/dir:", err: image.ErrInvalidReference},
		{in: "docker-archive:", err: image.ErrInvalidReference},
		{in: "docker-archive:/a.tar:Not A Tag", err: image.ErrInvalidReference},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := image.ParseReference(tc.in, tc.insecure)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if r.String() != tc.want || r.Kind() != tc.kind {
				t.Errorf("got %q kind %d, want %q kind %d", r.String(), r.Kind(), tc.want, tc.kind)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestLayoutTagIsAFullName: oci:DIR:TAG splits at the first colon, so a
// layout annotated with a full name (as hack/images writes) is addressable.
func TestLayoutTagIsAFullName(t *testing.T) {
	r, err := image.ParseReference("oci:/images/two:ephem.local/ephem/busybox:test", nil)
	if err != nil || r.String() != "oci:/images/two:ephem.local/ephem/busybox:test" {
		t.Fatalf("got %v, %v", r, err)
	}
	again, err := image.ParseReference(r.String(), nil)
	if err != nil || again.String() != r.String() {
		t.Errorf("does not read back: %v, %v", again, err)
	}
}
