// Package backends registers every ephem backend, in the order their
// target forms are listed in help and errors: the local engine (the
// default), then Kubernetes. Import it for its side effect, as
// database/sql drivers are: a new backend is one package plus one line
// here.
package backends

import (
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/runtime/kube"
	"github.com/ephem-dev/ephem/pkg/runtime/local"
)

func init() {
	runtime.Register(local.Registration(), kube.Registration())
}
