package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ephem-dev/ephem/pkg/runtime"
)

// The keys a configuration file may set.
const (
	KeyImage           = "image"
	KeyLocalImage      = "local.image"
	KeyKubernetesImage = "kubernetes.image"
	KeyProfile         = "profile"
	KeyPull            = "pull"
	KeyCacheDir        = "cache-dir"
	KeyInsecure        = "insecure-registries"
	KeyAuditLog        = "audit.log"
	KeyAuditEnabled    = "audit.enabled"
	KeyRecordDir       = "record.dir"
)

// Kind is the type of a key's value.
type Kind int

// The kinds of values.
const (
	String Kind = iota // a scalar
	Bool               // true or false
	List               // a sequence of scalars
)

// Key describes one configuration key.
type Key struct {
	// Name is the dotted name: "local.image" is image under local.
	Name string
	// Kind is the type of its value.
	Kind Kind
	// Env is the environment variable that overrides the files, if any.
	Env string
	// EnvNegates says Env=1 means false (EPHEM_NO_AUDIT=1 for
	// audit.enabled: false); another non-empty value means true.
	EnvNegates bool
	// Help says what the key sets.
	Help string
}

// Keys are every key, in the order "ephem config view" lists them.
var Keys = []Key{
	{Name: KeyImage, Env: "EPHEM_IMAGE", Help: "debug image (--image)"},
	{Name: KeyLocalImage, Env: "EPHEM_IMAGE", Help: "debug image for local targets, over image"},
	{Name: KeyKubernetesImage, Env: "EPHEM_IMAGE", Help: "debug image for Kubernetes targets, over image"},
	{Name: KeyProfile, Help: "security profile (--profile)"},
	{Name: KeyPull, Help: "pull policy: always, missing or never (--pull)"},
	{Name: KeyCacheDir, Env: "EPHEM_CACHE_DIR", Help: "image cache directory (--cache-dir)"},
	{Name: KeyInsecure, Kind: List, Help: "registry hosts reached over plain HTTP (--insecure-registry)"},
	{Name: KeyAuditLog, Env: "EPHEM_AUDIT_LOG", Help: "audit log file (--audit-log)"},
	{Name: KeyAuditEnabled, Kind: Bool, Env: "EPHEM_NO_AUDIT", EnvNegates: true, Help: "write the audit log (false: --no-audit)"},
	{Name: KeyRecordDir, Env: "EPHEM_RECORD_DIR", Help: "record every terminal session into this directory (--record-dir)"},
}

// KeyNamed returns the key called name.
func KeyNamed(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Paths are the files Load reads.
type Paths struct {
	// User is the user's file; its values beat the system file's.
	User string
	// UserExplicit says User was named ($EPHEM_CONFIG), so it must exist.
	UserExplicit bool
	// System is the system-wide file.
	System string
}

// Env names the environment variable that names the user's file instead
// of $XDG_CONFIG_HOME/ephem/config.yaml.
const Env = "EPHEM_CONFIG"

// SystemFile is the system-wide configuration file.
const SystemFile = "/etc/ephem/config.yaml"

// DefaultPaths returns the files ephem reads: $EPHEM_CONFIG, else
// $XDG_CONFIG_HOME/ephem/config.yaml (default ~/.config/ephem/config.yaml),
// over /etc/ephem/config.yaml.
func DefaultPaths() Paths {
	p := Paths{System: SystemFile}
	if f := os.Getenv(Env); f != "" {
		p.User, p.UserExplicit = f, true
		return p
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return p
		}
		dir = filepath.Join(home, ".config")
	}
	p.User = filepath.Join(dir, "ephem", "config.yaml")
	return p
}

// Value is one key's value as a file sets it.
type Value struct {
	// Key is the key's name.
	Key string
	// Str is a String value.
	Str string
	// List is a List value.
	List []string
	// Bool is a Bool value.
	Bool bool
	// File and Line are where the file sets it.
	File string
	Line int
}

// Any returns the value as a string, []string or bool by its key's kind.
func (v Value) Any() any {
	k, _ := KeyNamed(v.Key)
	switch k.Kind {
	case List:
		return v.List
	case Bool:
		return v.Bool
	}
	return v.Str
}

// Where is "FILE:LINE".
func (v Value) Where() string { return fmt.Sprintf("%s:%d", v.File, v.Line) }

// File is one configuration file as read.
type File struct {
	// Path is the file's path.
	Path string
	// Scope is "user" or "system".
	Scope string
	// Found says the file exists.
	Found bool

	values map[string]Value
}

// Config is the files' values, the user's over the system's. The zero
// Config and a nil *Config set nothing.
type Config struct {
	// Files are the files read, the user's first.
	Files []File
}

// Load reads the files p names; an absent file sets nothing, except a
// user file named by $EPHEM_CONFIG. Errors name the file (and the line),
// wrapping runtime.ErrConfig, or runtime.ErrPermission for a file this
// user may not read.
func Load(p Paths) (*Config, error) {
	c := &Config{}
	for _, f := range []struct {
		path, scope string
		must        bool
	}{{p.User, "user", p.UserExplicit}, {p.System, "system", false}} {
		if f.path == "" {
			continue
		}
		file, err := readFile(f.path, f.scope, f.must)
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, file)
	}
	return c, nil
}

func readFile(path, scope string, must bool) (File, error) {
	f := File{Path: path, Scope: scope}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !must:
		return f, nil
	case errors.Is(err, fs.ErrPermission) && !must && !searchable(filepath.Dir(path)):
		// Another user's home (HOME kept by sudo -u or runuser): not this
		// user's file.
		return f, nil
	case errors.Is(err, fs.ErrPermission):
		return f, fmt.Errorf("reading %s: %w", path, runtime.NewKind(runtime.ErrPermission, "permission denied: make it readable or set "+Env+" to another file"))
	case err != nil:
		return f, fmt.Errorf("reading %s: %w", path, runtime.NewKind(runtime.ErrConfig, strings.TrimPrefix(unwrapPathError(err), path+": ")))
	}
	f.Found = true
	if f.values, err = parse(path, data); err != nil {
		return f, fmt.Errorf("reading %s: %w", path, err)
	}
	return f, nil
}

// unwrapPathError is a *fs.PathError's reason: "no such file or directory".
func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Lookup returns key's value from the first file that sets it.
func (c *Config) Lookup(key string) (Value, bool) {
	if c == nil {
		return Value{}, false
	}
	for _, f := range c.Files {
		if v, ok := f.values[key]; ok {
			return v, true
		}
	}
	return Value{}, false
}

// ImageFor returns the debug image the files set for backend (a
// registration name such as "local" or "Kubernetes"): in each file, the
// user's first, BACKEND.image, then image.
func (c *Config) ImageFor(backend string) (Value, bool) {
	if c == nil {
		return Value{}, false
	}
	for _, f := range c.Files {
		for _, k := range []string{strings.ToLower(backend) + ".image", KeyImage} {
			if v, ok := f.values[k]; ok {
				return v, true
			}
		}
	}
	return Value{}, false
}

// Source kinds of a Setting.
const (
	SourceFlag    = "flag"
	SourceEnv     = "env"
	SourceFile    = "file"
	SourceDefault = "default"
)

// Setting is a key's effective value and where it came from.
type Setting struct {
	// Key is the key's name.
	Key string `json:"key"`
	// Value is a string, []string or bool; nil when only a default
	// (which the caller knows) applies.
	Value any `json:"value"`
	// Source is SourceFlag, SourceEnv, SourceFile or SourceDefault.
	Source string `json:"source"`
	// From names the flag ("--image"), the variable ("EPHEM_IMAGE") or
	// the file and line ("/etc/ephem/config.yaml:3").
	From string `json:"from,omitempty"`
}

// Effective returns key's value from its environment variable, else the
// files (for the per-backend images, also image), else a Setting of
// SourceDefault with no Value.
func (c *Config) Effective(key string) Setting {
	k, _ := KeyNamed(key)
	if k.Env != "" {
		if v := os.Getenv(k.Env); v != "" {
			s := Setting{Key: key, Value: v, Source: SourceEnv, From: k.Env}
			if k.EnvNegates {
				s.Value = v != "1"
			}
			return s
		}
	}
	v, ok := c.Lookup(key)
	if backend, isImage := strings.CutSuffix(key, ".image"); isImage {
		v, ok = c.ImageFor(backend)
	}
	if !ok {
		return Setting{Key: key, Source: SourceDefault}
	}
	return Setting{Key: key, Value: v.Any(), Source: SourceFile, From: v.Where()}
}

// searchable says whether this user may look into dir.
func searchable(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "."))
	return !errors.Is(err, fs.ErrPermission)
}
