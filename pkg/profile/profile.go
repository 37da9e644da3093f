// Package profile holds ephem's security profiles. Each profile mutates a
// backend-neutral spec.Container with the meaning kubectl debug gives the
// profile of the same name, so a user's --profile behaves alike everywhere.
package profile

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ephem-dev/ephem/pkg/spec"
)

// ErrUnknown is returned for a profile name that does not exist.
var ErrUnknown = errors.New("unknown profile")

// Style is how the debug container relates to its target.
type Style int

// Debugging styles, as kubectl distinguishes them.
const (
	// Ephemeral adds a container beside a running target (the local engine
	// and pods/ephemeralcontainers).
	Ephemeral Style = iota
	// Node runs in the host's namespaces.
	Node
	// PodCopy debugs a copy of a pod.
	PodCopy
)

// Interface is one security profile.
type Interface interface {
	// Name is the profile's --profile value.
	Name() string
	// Apply mutates c for the given style.
	Apply(c *spec.Container, style Style) error
}

type fn struct {
	name  string
	apply func(c *spec.Container, style Style)
}

func (p fn) Name() string { return p.name }

func (p fn) Apply(c *spec.Container, style Style) error {
	p.apply(c, style)
	return nil
}

// Default is the profile used when none is given: kubectl's "general".
const Default = "general"

var profiles = map[string]Interface{
	// general: may trace the target's processes, so /proc/1/root works.
	"general": fn{"general", func(c *spec.Container, style Style) {
		if style != Node {
			addCapabilities(c, "SYS_PTRACE")
		} else {
			c.Security = spec.Security{}
			c.Host = spec.HostAccess{Namespaces: true, Root: true}
		}
	}},
	// legacy: kubectl's old behaviour, the runtime's defaults untouched
	// (on a node: the host's namespaces and root).
	"legacy": fn{"legacy", func(c *spec.Container, style Style) {
		if style == Node {
			c.Host = spec.HostAccess{Namespaces: true, Root: true}
		}
	}},
	// baseline: the runtime's defaults, nothing added.
	"baseline": fn{"baseline", func(c *spec.Container, _ Style) { c.Security = spec.Security{} }},
	// restricted: Pod Security "restricted": non-root, no capabilities,
	// no privilege escalation, the runtime's default seccomp profile.
	"restricted": fn{"restricted", func(c *spec.Container, _ Style) {
		f, t := false, true
		c.Security = spec.Security{
			RunAsNonRoot:             &t,
			DropCapabilities:         []string{"ALL"},
			AllowPrivilegeEscalation: &f,
			SeccompRuntimeDefault:    true,
		}
	}},
	// netadmin: NET_ADMIN and NET_RAW, enough for tcpdump and ip (on a
	// node: the host's namespaces, not its root).
	"netadmin": fn{"netadmin", func(c *spec.Container, style Style) {
		addCapabilities(c, "NET_ADMIN", "NET_RAW")
		if style == Node {
			c.Host = spec.HostAccess{Namespaces: true}
		}
	}},
	// sysadmin: privileged, all capabilities (on a node: the host's
	// namespaces and root).
	"sysadmin": fn{"sysadmin", func(c *spec.Container, style Style) {
		c.Security.Privileged = true
		if style == Node {
			c.Host = spec.HostAccess{Namespaces: true, Root: true}
		}
	}},
}

// Get returns the profile named name.
func Get(name string) (Interface, error) {
	if name == "" {
		name = Default
	}
	p, ok := profiles[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// Names lists the profile names, sorted.
func Names() []string {
	out := make([]string, 0, len(profiles))
	for n := range profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func addCapabilities(c *spec.Container, caps ...string) {
	for _, want := range caps {
		found := false
		for _, have := range c.Security.AddCapabilities {
			found = found || have == want
		}
		if !found {
			c.Security.AddCapabilities = append(c.Security.AddCapabilities, want)
		}
	}
}
