package target

import (
	"context"
	"errors"
	"strings"
)

// ParseImage is the Parse of "image://REF": REF is any image reference
// --image accepts (a registry reference, oci:DIR[:TAG],
// docker-archive:FILE), checked when the engine pulls it.
func ParseImage(r *Ref, rest string) error {
	if rest == "" {
		return errors.New("missing image reference")
	}
	if strings.ContainsFunc(rest, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return errors.New("an image reference has no spaces or control characters")
	}
	r.Name = rest
	return nil
}

// ResolveImage resolves "image://REF": nothing runs, and the engine pulls
// the image and stacks its layers read-only at /target.
func ResolveImage(_ context.Context, r Ref) (Process, error) {
	return Process{Description: "image " + r.Name, Stopped: &Filesystem{Image: r.Name, State: "an image runs nothing"}}, nil
}
