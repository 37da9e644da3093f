package image

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Prefixes of the local reference forms.
const (
	// LayoutPrefix introduces an OCI image layout reference: oci:DIR[:TAG].
	LayoutPrefix = "oci:"
	// ArchivePrefix introduces a `docker save` tarball: docker-archive:FILE[:TAG].
	ArchivePrefix = "docker-archive:"
)

// Kind says where a Reference's image comes from.
type Kind int

// Reference kinds.
const (
	// KindRegistry is an image in a Docker/OCI registry.
	KindRegistry Kind = iota
	// KindLayout is an image in an OCI image layout directory.
	KindLayout
	// KindArchive is an image in a `docker save` tarball.
	KindArchive
)

// Reference is a parsed --image value. Parsing does no I/O, so it suits
// flag validation.
type Reference struct {
	kind Kind
	reg  name.Reference // KindRegistry
	path string         // KindLayout: directory; KindArchive: file (absolute)
	tag  string         // KindLayout, KindArchive: optional tag
	raw  string         // KindArchive: text after the prefix, absolute
}

// maxRef bounds an image reference: a path is at most PATH_MAX (4096)
// bytes, a registry reference far less.
const maxRef = 4096 + len(ArchivePrefix) + 256

// ParseReference parses s as a registry reference (default registry
// docker.io, default tag latest), oci:DIR[:TAG] or docker-archive:FILE[:TAG].
// Registries named in insecure, and loopback registries, are reached over
// plain HTTP. Malformed input yields an error wrapping ErrInvalidReference.
func ParseReference(s string, insecure []string) (Reference, error) {
	if len(s) > maxRef {
		return Reference{}, fmt.Errorf("%w: an image reference of %d bytes is too long (at most %d)", ErrInvalidReference, len(s), maxRef)
	}
	switch {
	case strings.HasPrefix(s, LayoutPrefix):
		return parseLocal(KindLayout, s, strings.TrimPrefix(s, LayoutPrefix))
	case strings.HasPrefix(s, ArchivePrefix):
		return parseLocal(KindArchive, s, strings.TrimPrefix(s, ArchivePrefix))
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
		return Reference{}, fmt.Errorf("%w %q looks like a path: for an OCI layout directory write %s%s, for a docker save archive %s%s",
			ErrInvalidReference, s, LayoutPrefix, s, ArchivePrefix, s)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return Reference{}, fmt.Errorf("%w %q: %w (expected e.g. busybox, registry.example.com/team/tools:1.2, "+
			"oci:DIR[:TAG] or docker-archive:FILE[:TAG])", ErrInvalidReference, s, err)
	}
	if isInsecure(ref.Context().RegistryStr(), insecure) {
		if ref, err = name.ParseReference(s, name.Insecure); err != nil {
			return Reference{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, s, err)
		}
	}
	return Reference{kind: KindRegistry, reg: ref}, nil
}

// parseLocal parses the part of an oci: or docker-archive: reference after
// its prefix.
func parseLocal(kind Kind, s, rest string) (Reference, error) {
	p, tag := rest, ""
	if kind == KindLayout {
		// oci:DIR[:TAG], split at the first colon as skopeo and podman
		// split it: the tag is the layout's ref.name annotation, which may
		// be a full name (ephem.local/ephem/busybox:test). A directory
		// whose path holds a colon cannot be named.
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			p, tag = rest[:i], rest[i+1:]
			if tag == "" {
				return Reference{}, fmt.Errorf("%w %q: empty tag after the colon", ErrInvalidReference, s)
			}
		}
	} else if i := strings.IndexByte(rest, ':'); i >= 0 {
		// docker-archive:FILE[:TAG], where TAG is itself repo[:tag]. The split
		// is confirmed against the file system when the image is opened.
		p, tag = rest[:i], rest[i+1:]
		if _, err := name.NewTag(tag); err != nil {
			return Reference{}, fmt.Errorf("%w %q: tag %q: %w", ErrInvalidReference, s, tag, err)
		}
	}
	if p == "" {
		return Reference{}, fmt.Errorf("%w %q: missing path (expected %sPATH[:TAG])", ErrInvalidReference, s,
			strings.TrimSuffix(s, rest))
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Reference{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, s, err)
	}
	raw := abs
	if tag != "" {
		raw += ":" + tag
	}
	return Reference{kind: kind, path: abs, tag: tag, raw: raw}, nil
}

// isInsecure reports whether host (host[:port]) may be reached over plain
// HTTP: loopback hosts always, others when listed.
func isInsecure(host string, insecure []string) bool {
	if slices.Contains(insecure, host) {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if slices.Contains(insecure, h) {
		return true
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Kind returns where the image comes from.
func (r Reference) Kind() Kind { return r.kind }

// Local reports whether the image comes from the local file system, where
// resolving it is cheap and needs no network.
func (r Reference) Local() bool { return r.kind != KindRegistry }

// String returns the normalized reference, for example
// index.docker.io/library/busybox:latest or oci:/abs/dir:tag.
func (r Reference) String() string {
	switch r.kind {
	case KindLayout:
		if r.tag != "" {
			return LayoutPrefix + r.path + ":" + r.tag
		}
		return LayoutPrefix + r.path
	case KindArchive:
		return ArchivePrefix + r.raw
	}
	if r.reg == nil {
		return ""
	}
	return r.reg.Name()
}
