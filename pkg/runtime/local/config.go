package local

// initConfig is everything the container's init needs, sent by the host
// half over the control socket.
type initConfig struct {
	// Rootfs is the image root, relative to init's working directory,
	// where the constructor leaves it.
	Rootfs string `json:"rootfs"`
	// Argv is the command; Env the image's environment with overrides.
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// WorkingDir is the command's directory ("" = /).
	WorkingDir string `json:"workingDir,omitempty"`
	// User is "uid[:gid]" or "name[:group]", resolved against the image.
	User string `json:"user,omitempty"`
	// RunAsNonRoot refuses a user that resolves to UID 0.
	RunAsNonRoot bool `json:"runAsNonRoot,omitempty"`
	// Caps is the capability bounding set; NoNewPrivs sets no_new_privs.
	Caps       []int `json:"caps"`
	NoNewPrivs bool  `json:"noNewPrivs,omitempty"`
	// Seccomp loads the runtime-default seccomp filter (seccomp.go).
	Seccomp bool `json:"seccomp,omitempty"`
	// Privileged gives the host's /dev and a writable /sys.
	Privileged bool `json:"privileged,omitempty"`
	// TTY allocates a terminal of Rows×Cols; Stdin keeps standard input.
	TTY   bool   `json:"tty,omitempty"`
	Stdin bool   `json:"stdin,omitempty"`
	Rows  uint16 `json:"rows,omitempty"`
	Cols  uint16 `json:"cols,omitempty"`
	// Files are written into the image's root before the command starts:
	// the target's /etc/resolv.conf, /etc/hosts and /etc/hostname.
	Files map[string][]byte `json:"files,omitempty"`
	// Target are the layer directories, topmost first, of a target that
	// runs nothing, mounted read-only at /target (stopped.go); the
	// constructor then created new namespaces instead of joining any.
	Target []string `json:"target,omitempty"`
}
