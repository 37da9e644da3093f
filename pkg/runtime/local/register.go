package local

import (
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

// Registration returns the local engine's entry in the registry: host
// processes by PID, Docker and containerd containers (also by a bare NAME,
// looked up in every runtime on this host), and this host's sessions (what
// ephem attach ID names). It is the default backend of commands that name
// no target.
func Registration() runtime.Registration {
	return runtime.Registration{
		Name:    "local",
		Default: true,
		Schemes: []target.Scheme{
			{Name: target.SchemePID, Prefixes: []string{"pid:"}, Example: "pid:4242",
				Parse: target.ParsePID, Resolve: target.ResolvePID},
			{Name: target.SchemeDocker, Prefixes: []string{"docker://"}, Example: "docker://NAME|ID",
				Parse: target.ParseContainer, Resolve: target.ResolveDockerOrProc},
			{Name: target.SchemeContainerd, Prefixes: []string{"containerd://"}, Example: "containerd://[NAMESPACE/]ID|NAME",
				Parse: target.ParseContainerd, Resolve: target.ResolveContainerd},
			{Name: target.SchemePodman, Prefixes: []string{"podman://"}, Example: "podman://[USER/]NAME|ID",
				Parse: target.ParsePodman, Resolve: target.ResolvePodman},
			{Name: target.SchemeCRI, Prefixes: []string{"cri://"}, Example: "cri://ID|NAMESPACE/POD[/CONTAINER]",
				Parse: target.ParseCRI, Resolve: target.ResolveCRI},
			{Name: target.SchemeImage, Prefixes: []string{"image://"}, Example: "image://REF",
				Parse: target.ParseImage, Resolve: target.ResolveImage},
			{Name: target.SchemeSession, Prefixes: []string{"session:"}, Example: "session:ID", Hidden: true,
				Parse: target.ParseContainer},
			// The empty prefix: tried after every other form, Kubernetes' too.
			{Name: target.SchemeName, Prefixes: []string{""}, Example: "NAME",
				Parse: target.ParseName, Resolve: target.ResolveName},
		},
		NewConfig: func() runtime.Config { return config{} },
	}
}

// config is the local engine's configuration: it has no flags of its own.
type config struct{}

// AddFlags implements runtime.Config.
func (config) AddFlags(string, *pflag.FlagSet) {}

// New implements runtime.Config.
func (config) New(env runtime.Env) (runtime.Backend, error) {
	return New(Options{CacheDir: env.CacheDir, Pull: env.Pull, DetachKeys: env.DetachKeys, Log: env.Log}), nil
}
