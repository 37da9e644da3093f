// Package spec describes a debug container independently of the backend that
// runs it. Profiles mutate a Container; each backend translates it: the local
// engine into namespaces, mounts and credentials, the Kubernetes backend into
// a corev1.EphemeralContainer.
package spec

// PullPolicy says when a backend fetches the image from its registry.
type PullPolicy string

// Pull policies, with the meaning Kubernetes gives Always, IfNotPresent, Never.
const (
	PullAlways  PullPolicy = "always"
	PullMissing PullPolicy = "missing"
	PullNever   PullPolicy = "never"
)

// Container is the backend-neutral description of one debug container.
type Container struct {
	// Name is the container's name; backends pick a unique one when empty.
	Name string
	// Image is the tool image reference.
	Image string
	// PullPolicy says when the image is fetched.
	PullPolicy PullPolicy
	// Command replaces the image's entrypoint when set (kubectl debug's
	// meaning of the words after "--").
	Command []string
	// Args replaces the image's cmd when set.
	Args []string
	// Env is added to the image's environment, later entries winning.
	Env []EnvVar
	// EnvFromTarget starts the environment from the target's: locally the
	// target process's, under the image's; on Kubernetes the target
	// container's env and envFrom. The target's PATH is left out, so that
	// the image's finds the tools, and Env overrides it all.
	EnvFromTarget bool
	// WorkingDir overrides the image's working directory.
	WorkingDir string
	// User overrides the image's user: "uid", "uid:gid", "name" or "name:group".
	User string
	// Stdin keeps standard input open; TTY allocates a terminal.
	Stdin, TTY bool
	// TargetContainer names the container whose namespaces are shared on
	// backends with several containers per target.
	TargetContainer string
	// SharePID joins the target's PID namespace.
	SharePID bool
	// Host is what a node debugging container gets of its host; profiles
	// set it for the node style.
	Host HostAccess
	// Security is the security context profiles adjust.
	Security Security
}

// HostAccess is what of the host a node debugging container shares.
type HostAccess struct {
	// Namespaces shares the host's PID, network and IPC namespaces.
	Namespaces bool
	// Root mounts the host's root filesystem at /host.
	Root bool
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name, Value string
}

// Security is the subset of a container security context ephem's profiles set.
type Security struct {
	// Privileged grants all capabilities and device access.
	Privileged bool
	// AddCapabilities and DropCapabilities adjust the runtime's default set;
	// names are without the CAP_ prefix; "ALL" is allowed in DropCapabilities.
	AddCapabilities, DropCapabilities []string
	// AllowPrivilegeEscalation, when false, sets no_new_privs.
	AllowPrivilegeEscalation *bool
	// RunAsNonRoot refuses to start as UID 0.
	RunAsNonRoot *bool
	// RunAsUser and RunAsGroup override the user.
	RunAsUser, RunAsGroup *int64
	// SeccompRuntimeDefault asks for the runtime's default seccomp profile.
	SeccompRuntimeDefault bool
}

// Argv returns the argv the container runs: the image's entrypoint and cmd
// as overridden by c, the way container runtimes combine them.
func (c Container) Argv(entrypoint, cmd []string) []string {
	switch {
	case len(c.Command) > 0:
		return append(append([]string{}, c.Command...), c.Args...)
	case len(c.Args) > 0:
		return append(append([]string{}, entrypoint...), c.Args...)
	default:
		return append(append([]string{}, entrypoint...), cmd...)
	}
}
