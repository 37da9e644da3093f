package local

import (
	"encoding/binary"
	"fmt"
	"path"
	"sort"
	"strings"
)

// initConfig is everything the container's init needs, sent by the host
// half over the control socket.
type initConfig struct {
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

// Record tags and flags of the encoded config; cinit.h defines the same
// (CFG_*, CFLAG_*) and TestConfigTagsMatchC checks that they agree.
const (
	cfgArg     = 1
	cfgEnv     = 2
	cfgCwd     = 3
	cfgUser    = 4
	cfgFlags   = 5
	cfgCaps    = 6
	cfgSeccomp = 7
	cfgWinsize = 8
	cfgFile    = 9
	cfgTarget  = 10

	cflagNonRoot    = 1
	cflagNNP        = 2
	cflagPrivileged = 4
	cflagTTY        = 8
	cflagStdin      = 16
)

// encode writes the config as the C init reads it (parse_config in
// cinit.c): records of a tag byte, a little-endian uint32 length and the
// value. The seccomp program is built here, so init only loads it.
func (c *initConfig) encode() ([]byte, error) {
	var b []byte
	rec := func(tag byte, v []byte) {
		b = append(b, tag)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	for _, a := range c.Argv {
		rec(cfgArg, []byte(a))
	}
	for _, e := range c.Env {
		rec(cfgEnv, []byte(e))
	}
	if c.WorkingDir != "" {
		rec(cfgCwd, []byte(c.WorkingDir))
	}
	if c.User != "" {
		rec(cfgUser, []byte(c.User))
	}
	var flags uint32
	for bit, on := range map[uint32]bool{cflagNonRoot: c.RunAsNonRoot, cflagNNP: c.NoNewPrivs,
		cflagPrivileged: c.Privileged, cflagTTY: c.TTY, cflagStdin: c.Stdin} {
		if on {
			flags |= bit
		}
	}
	rec(cfgFlags, binary.LittleEndian.AppendUint32(nil, flags))
	rec(cfgCaps, binary.LittleEndian.AppendUint64(nil, capMask(c.Caps)))
	if c.Seccomp {
		p, err := seccompProgram()
		if err != nil {
			return nil, err
		}
		var v []byte
		for _, f := range p {
			v = binary.LittleEndian.AppendUint16(v, f.Code)
			v = append(v, f.Jt, f.Jf)
			v = binary.LittleEndian.AppendUint32(v, f.K)
		}
		rec(cfgSeccomp, v)
	}
	if c.TTY {
		v := binary.LittleEndian.AppendUint16(nil, c.Rows)
		rec(cfgWinsize, binary.LittleEndian.AppendUint16(v, c.Cols))
	}
	names := make([]string, 0, len(c.Files))
	for n := range c.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		clean := path.Clean("/" + n)
		if clean == "/" || strings.ContainsRune(n, 0) {
			return nil, fmt.Errorf("bad file name %q", n)
		}
		rec(cfgFile, append(append([]byte(clean), 0), c.Files[n]...))
	}
	if len(c.Target) > 0 {
		rec(cfgTarget, nil)
	}
	return b, nil
}

// capMask is caps as a bit mask.
func capMask(caps []int) uint64 {
	var m uint64
	for _, c := range caps {
		if c >= 0 && c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}
