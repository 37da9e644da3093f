package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/pkg/config"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/google/go-cmp/cmp"
)

// write puts a file named name with text in a new directory.
func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	for _, k := range config.Keys {
		if k.Env != "" {
			t.Setenv(k.Env, "")
		}
	}
	user := write(t, "user.yaml", `# mine
image: user/tools:1
pull: always
audit:
  enabled: false
`)
	system := write(t, "system.yaml", `image: corp/tools:1
local:
  image: corp/local:1
kubernetes.image: corp/kube:1
profile: netadmin
pull: never
cache-dir: /srv/ephem
insecure-registries: [reg.corp:5000, 10.0.0.1:5000]
audit: {log: /var/log/ephem.jsonl}
record:
  dir: /var/log/ephem/sessions
`)
	c, err := config.Load(config.Paths{User: user, System: system})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]config.Setting{}
	for _, k := range config.Keys {
		got[k.Name] = c.Effective(k.Name)
	}
	file := func(key string, v any, where string, line int) config.Setting {
		return config.Setting{Key: key, Value: v, Source: config.SourceFile, From: where + ":" + strconv.Itoa(line)}
	}
	want := map[string]config.Setting{
		// The user's image beats the system's per-backend ones: a file is
		// taken whole before the next.
		"image":               file("image", "user/tools:1", user, 2),
		"local.image":         file("local.image", "user/tools:1", user, 2),
		"kubernetes.image":    file("kubernetes.image", "user/tools:1", user, 2),
		"profile":             file("profile", "netadmin", system, 5),
		"pull":                file("pull", "always", user, 3),
		"cache-dir":           file("cache-dir", "/srv/ephem", system, 7),
		"insecure-registries": file("insecure-registries", []string{"reg.corp:5000", "10.0.0.1:5000"}, system, 8),
		"audit.log":           file("audit.log", "/var/log/ephem.jsonl", system, 9),
		"audit.enabled":       file("audit.enabled", false, user, 5),
		"record.dir":          file("record.dir", "/var/log/ephem/sessions", system, 11),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Effective (-want +got):\n%s", d)
	}

	// Without the user's image, the system's per-backend ones apply.
	c, err = config.Load(config.Paths{User: filepath.Join(t.TempDir(), "absent.yaml"), System: system})
	if err != nil {
		t.Fatal(err)
	}
	for backend, want := range map[string]string{"local": "corp/local:1", "Kubernetes": "corp/kube:1", "test": "corp/tools:1"} {
		if v, ok := c.ImageFor(backend); !ok || v.Str != want {
			t.Errorf("ImageFor(%s) = %q, %v; want %q", backend, v.Str, ok, want)
		}
	}
	if !c.Files[1].Found || c.Files[0].Found || c.Files[0].Scope != "user" {
		t.Errorf("Files = %+v: want an absent user file and a found system file", c.Files)
	}

	// The environment beats both files; a key without a value anywhere is
	// left to the caller's default.
	t.Setenv("EPHEM_IMAGE", "env/tools:1")
	t.Setenv("EPHEM_CACHE_DIR", "/tmp/c")
	t.Setenv("EPHEM_NO_AUDIT", "1")
	for key, want := range map[string]config.Setting{
		"audit.enabled": {Key: "audit.enabled", Value: false, Source: config.SourceEnv, From: "EPHEM_NO_AUDIT"},
		"local.image":   {Key: "local.image", Value: "env/tools:1", Source: config.SourceEnv, From: "EPHEM_IMAGE"},
		"cache-dir":     {Key: "cache-dir", Value: "/tmp/c", Source: config.SourceEnv, From: "EPHEM_CACHE_DIR"},
	} {
		if d := cmp.Diff(want, c.Effective(key)); d != "" {
			t.Errorf("Effective(%s) (-want +got):\n%s", key, d)
		}
	}
	if got := (*config.Config)(nil).Effective("pull"); got.Source != config.SourceDefault || got.Value != nil {
		t.Errorf("nil Config: %+v, want a default", got)
	}
}

func TestDefaultPaths(t *testing.T) {
	t.Setenv("EPHEM_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", "/x/cfg")
	if got := config.DefaultPaths(); got != (config.Paths{User: "/x/cfg/ephem/config.yaml", System: "/etc/ephem/config.yaml"}) {
		t.Errorf("with XDG_CONFIG_HOME: %+v", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/al")
	if got := config.DefaultPaths().User; got != "/home/al/.config/ephem/config.yaml" {
		t.Errorf("without XDG_CONFIG_HOME: %s", got)
	}
	t.Setenv("EPHEM_CONFIG", "/etc/team.yaml")
	if got := config.DefaultPaths(); got.User != "/etc/team.yaml" || !got.UserExplicit {
		t.Errorf("with EPHEM_CONFIG: %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "pull: always\n\nimgae: busybox\n", `line 3: unknown key "imgae" (did you mean "image"?)`},
		{"unknown nested key", "local:\n  image: a\n  imag: b\n", `line 3: unknown key "local.imag" (did you mean "local.image"?)`},
		{"far from any key", "colour: blue\n", `line 1: unknown key "colour" (see docs/config.md for the keys)`},
		{"string wanted", "image:\n  - a\n", `line 2: image: want a string, got a list`},
		{"list wanted", "insecure-registries: reg:5000\n", `line 1: insecure-registries: want a list, such as ["registry.local:5000"], got "reg:5000"`},
		{"list of strings", "insecure-registries:\n- {a: b}\n", `line 2: insecure-registries: want a list of strings, got a mapping`},
		{"bool wanted", "audit:\n  enabled: maybe\n", `line 2: audit.enabled: want true or false, got "maybe"`},
		{"section wanted", "audit: true\n", `line 1: audit: want a mapping, such as "audit: {log: ..., enabled: ...}"`},
		{"no value", "profile:\n", `line 1: profile has no value`},
		{"bad pull", "pull: sometimes\n", `line 1: pull "sometimes": use always, missing or never`},
		{"bad profile", "profile: root\n", `line 1: profile "root": use `},
		{"relative path", "cache-dir: cache\n", `line 1: cache-dir "cache": give an absolute path`},
		{"twice", "image: a\nimage: b\n", `line 2: image is set twice (also on line 1)`},
		{"twice, dotted", "local.image: a\nlocal:\n  image: b\n", `line 3: local.image is set twice (also on line 1)`},
		{"not a mapping", "- image\n", `line 1: want a mapping of keys`},
		{"bad yaml", "image: a\n  pull: b\n", `line 2: mapping values are not allowed in this context`},
		{"bad indentation", "audit:\n  log: /a\n enabled: true\n", `line 2: did not find expected key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "config.yaml", tc.text)
			_, err := config.Load(config.Paths{User: p})
			if err == nil || !strings.HasPrefix(err.Error(), "reading "+p+": "+tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line starting %q", err, "reading "+p+": "+tc.want)
			}
			if !errors.Is(err, runtime.ErrConfig) {
				t.Errorf("error %v does not wrap runtime.ErrConfig", err)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	// Empty files and comments set nothing; absent files are skipped.
	for _, text := range []string{"", "# nothing yet\n", "---\n", "~\n"} {
		c, err := config.Load(config.Paths{User: write(t, "c.yaml", text), System: "/nonexistent/ephem.yaml"})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if _, ok := c.Lookup("image"); ok {
			t.Errorf("%q sets image", text)
		}
	}
	// A file named by EPHEM_CONFIG must exist.
	_, err := config.Load(config.Paths{User: "/nonexistent/team.yaml", UserExplicit: true})
	if err == nil || err.Error() != "reading /nonexistent/team.yaml: no such file or directory" || !errors.Is(err, runtime.ErrConfig) {
		t.Errorf("absent $EPHEM_CONFIG: %v", err)
	}
	// A directory is no file.
	dir := t.TempDir()
	if _, err := config.Load(config.Paths{User: dir}); err == nil || !errors.Is(err, runtime.ErrConfig) {
		t.Errorf("a directory: %v", err)
	}
	// Anchors and aliases resolve.
	c, err := config.Load(config.Paths{User: write(t, "c.yaml", "image: &img reg/tools:2\nlocal:\n  image: *img\n")})
	if v, ok := c.ImageFor("local"); err != nil || !ok || v.Str != "reg/tools:2" || v.Line != 3 {
		t.Errorf("alias: %+v %v %v", v, ok, err)
	}
	if os.Geteuid() == 0 {
		return // root reads any file
	}
	p := write(t, "c.yaml", "image: a\n")
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(config.Paths{User: p}); !errors.Is(err, runtime.ErrPermission) {
		t.Errorf("unreadable: %v, want ErrPermission", err)
	}
}
