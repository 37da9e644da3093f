package nsenter

import (
	"os"
	"regexp"
	"testing"
)

// TestKindsAgree checks that every error kind nsenter.h defines for the C
// side has the same value as its Go constant, and the other way round.
func TestKindsAgree(t *testing.T) {
	b, err := os.ReadFile("nsenter.h")
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]string{}
	for _, m := range regexp.MustCompile(`#define KIND_(\w+) "(\w+)"`).FindAllStringSubmatch(string(b), -1) {
		c[m[1]] = m[2]
	}
	goKinds := map[string]string{"OS": KindOS, "INTERNAL": KindInternal, "PERMISSION": KindPermission,
		"UNSUPPORTED": KindUnsupported, "USAGE": KindUsage, "NOTFOUND": KindNotFound, "BUSY": KindBusy}
	if len(c) != len(goKinds) {
		t.Errorf("nsenter.h defines %d kinds, Go %d: %v", len(c), len(goKinds), c)
	}
	for k, v := range goKinds {
		if c[k] != v {
			t.Errorf("KIND_%s: C %q, Go %q", k, c[k], v)
		}
	}
}
