package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/kube"
	"github.com/ephem-dev/ephem/pkg/target"
)

func TestExitCodeFor(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("doing something: %w", err) }
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&runtime.ExitError{Code: 42}, 42},
		{wrap(&runtime.ExitError{Code: 127, Err: errors.New("not found")}), 127},
		{wrap(errUsage), ExitUsage},
		{wrap(target.ErrInvalid), ExitUsage},
		{wrap(image.ErrInvalidReference), ExitUsage},
		{wrap(runtime.ErrInvalidSpec), ExitUsage},
		{wrap(image.ErrCorrupt), ExitImageData},
		{wrap(target.ErrNotFound), ExitTargetNotFound},
		{wrap(image.ErrNotFound), ExitImageNotFound},
		{wrap(image.ErrUnreachable), ExitUnreachable},
		{wrap(target.ErrUnreachable), ExitUnreachable},
		{wrap(runtime.ErrUnsupported), ExitUnsupported},
		{wrap(image.ErrUnsupported), ExitUnsupported},
		{wrap(runtime.ErrOS), ExitOS},
		{wrap(runtime.ErrTargetGone), ExitTargetGone},
		{wrap(runtime.ErrPermission), ExitPermission},
		{wrap(image.ErrAuth), ExitPermission},
		{wrap(kube.ErrConfig), ExitConfig},
		{wrap(kube.ErrImagePull), ExitImageNotFound},
		{wrap(kube.ErrCreate), ExitCreate},
		{wrap(kube.ErrTimeout), ExitTimeout},
		{wrap(kube.ErrDenied), ExitPermission},
		{wrap(kube.ErrDisabled), ExitUnsupported},
		{errors.New("a bug"), ExitInternal},
	} {
		if got := exitCodeFor(tt.err); got != tt.want {
			t.Errorf("exitCodeFor(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
