//go:build !ephem_local

package backends

import (
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/kube"
	"github.com/ephem-dev/ephem/pkg/runtime/local"
)

func init() {
	runtime.Register(local.Registration(), kube.Registration())
}
