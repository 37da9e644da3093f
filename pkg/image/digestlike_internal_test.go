package image

import (
	"strings"
	"testing"
)

func TestDigestLike(t *testing.T) {
	for s, want := range map[string]bool{"0123456789ab": true, "sha256:0123456789ab": true, strings.Repeat("f", 64): true,
		"sha256:" + strings.Repeat("f", 64): true, "0123456789a": false, strings.Repeat("f", 65): false,
		"0123456789AB": false, "sha256:": false, "sha512:0123456789ab": false, "busybox:latest": false, "": false} {
		if got := digestLike(s); got != want {
			t.Errorf("digestLike(%q) = %v, want %v", s, got, want)
		}
	}
}
