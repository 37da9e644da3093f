package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/audit"
	"github.com/ephem-dev/ephem/pkg/config"
	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/spec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// configPaths are the configuration files ephem reads; tests replace it.
var configPaths = config.DefaultPaths

// configFlags bind configuration keys to the flags whose defaults they
// set (negate: the flag is the key's opposite, --no-audit for
// audit.enabled). The images are bound in debug's Validate, which knows
// the target's backend.
var configFlags = []struct {
	key, flag string
	negate    bool
}{
	{key: config.KeyImage, flag: "image"},
	{key: config.KeyProfile, flag: "profile"},
	{key: config.KeyPull, flag: "pull"},
	{key: config.KeyCacheDir, flag: "cache-dir"},
	{key: config.KeyInsecure, flag: "insecure-registry"},
	{key: config.KeyAuditLog, flag: "audit-log"},
	{key: config.KeyAuditEnabled, flag: "no-audit", negate: true},
	{key: config.KeyRecordDir, flag: "record-dir"},
}

// printsOnly says whether cmd only prints (version, help, completion):
// it runs without reading the configuration files, so that a malformed one
// leaves them working, and without catching signals (Ctrl-C ends it).
func printsOnly(cmd *cobra.Command) bool {
	for c := cmd; c != nil; c = c.Parent() {
		switch c.Name() {
		case "version", "help", "completion", cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
			return true
		}
	}
	return false
}

// loadConfig reads the configuration files and sets the defaults of cmd's
// flags from them: a flag the command line gives, or whose environment
// variable is set, keeps its value. The root command does not call it for
// a command that only prints (printsOnly).
func (g *GlobalOptions) loadConfig(cmd *cobra.Command) error {
	c, err := config.Load(configPaths())
	if err != nil {
		return err
	}
	g.conf = c
	for _, b := range configFlags {
		f := cmd.Flags().Lookup(b.flag)
		s := c.Effective(b.key)
		if f == nil || f.Changed || s.Source != config.SourceFile || b.key == config.KeyImage {
			continue
		}
		if err := setFlag(f, s.Value, b.negate); err != nil {
			return fmt.Errorf("setting --%s from %s: %w", f.Name, s.From, err)
		}
	}
	return g.backendImage(cmd.Flags())
}

// backendImage sets a backend's own --image (Kubernetes' helper container
// of cp, ns, capture and port-forward) from the files' BACKEND.image or
// image, unless the command line or EPHEM_IMAGE gives one. Debug's common
// --image is set in its Validate, which knows the target's backend.
func (g *GlobalOptions) backendImage(flags *pflag.FlagSet) error {
	f := flags.Lookup("image")
	if f == nil || len(f.Annotations[annOwner]) != 1 {
		return nil
	}
	img, err := g.configImage(flags, f.Annotations[annOwner][0], "")
	if err != nil || img == "" {
		return err
	}
	return f.Value.Set(img)
}

// setFlag sets f's value (not its Changed) to v: a string, bool or list.
func setFlag(f *pflag.Flag, v any, negate bool) error {
	switch v := v.(type) {
	case bool:
		return f.Value.Set(strconv.FormatBool(v != negate))
	case []string:
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			return sv.Replace(v)
		}
		for _, s := range v {
			if err := f.Value.Set(s); err != nil {
				return err
			}
		}
		return nil
	}
	return f.Value.Set(fmt.Sprint(v))
}

// configImage is the debug image for a target of backend: --image or
// EPHEM_IMAGE if given, else the files' BACKEND.image or image, else def.
func (g *GlobalOptions) configImage(flags *pflag.FlagSet, backend, def string) (string, error) {
	if flags.Changed("image") || os.Getenv("EPHEM_IMAGE") != "" {
		return def, nil
	}
	v, ok := g.conf.ImageFor(backend)
	if !ok {
		return def, nil
	}
	if _, err := image.ParseReference(v.Str, nil); err != nil {
		return "", fmt.Errorf("reading %s: %w", v.File, runtime.NewKind(runtime.ErrConfig, fmt.Sprintf("line %d: %s: %v", v.Line, v.Key, err)))
	}
	return v.Str, nil
}

func newConfigCmd(g *GlobalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show ephem's configuration",
		Example: `  ephem config view
  EPHEM_CONFIG=/etc/ephem/ci.yaml ephem config view -o json`,
		Long: `ephem reads defaults for its flags from two YAML files: the user's
($EPHEM_CONFIG, else $XDG_CONFIG_HOME/ephem/config.yaml, default
~/.config/ephem/config.yaml) and the system's (/etc/ephem/config.yaml).
A flag beats its environment variable, which beats the user's file, which
beats the system's. See docs/config.md for the keys.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	var out outputOptions
	view := &cobra.Command{
		Use:   "view",
		Short: "Show every configuration key's effective value and where it comes from",
		Example: `  ephem config view
  ephem config view -o yaml`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			return g.viewConfig(c, out)
		},
	}
	addOutputFlags(view, &out, formatTable, formatJSON, formatYAML)
	cmd.AddCommand(view)
	return cmd
}

// configView is what "ephem config view -o json|yaml" prints.
type configView struct {
	Files    []configFile     `json:"files"`
	Settings []config.Setting `json:"settings"`
}

type configFile struct {
	Path  string `json:"path"`
	Scope string `json:"scope"`
	Found bool   `json:"found"`
}

func (g *GlobalOptions) viewConfig(cmd *cobra.Command, out outputOptions) error {
	v := configView{Settings: effectiveSettings(cmd, g.conf)}
	for _, f := range g.conf.Files {
		v.Files = append(v.Files, configFile{Path: f.Path, Scope: f.Scope, Found: f.Found})
	}
	if out.structured() {
		return printObject(g.Streams.Out, out.Format, v)
	}
	var rows [][]string
	for _, s := range v.Settings {
		rows = append(rows, []string{s.Key, valueText(s.Value), sourceText(s)})
	}
	if err := printTable(g.Streams.Out, []string{"KEY", "VALUE", "SOURCE"}, rows, out.NoHeaders); err != nil {
		return err
	}
	if out.NoHeaders {
		return nil
	}
	fmt.Fprintln(g.Streams.Out)
	for _, f := range v.Files {
		state := "read"
		if !f.Found {
			state = "not found"
		}
		fmt.Fprintf(g.Streams.Out, "%s file: %s (%s)\n", f.Scope, f.Path, state)
	}
	return nil
}

// effectiveSettings is every key's value: from a flag cmd was given, else
// the environment or the files, else the built-in default.
func effectiveSettings(cmd *cobra.Command, c *config.Config) []config.Setting {
	var out []config.Setting
	for _, k := range config.Keys {
		s := c.Effective(k.Name)
		for _, b := range configFlags {
			f := cmd.Flags().Lookup(b.flag)
			if b.key != k.Name || f == nil || !f.Changed {
				continue
			}
			s = config.Setting{Key: k.Name, Value: f.Value.String(), Source: config.SourceFlag, From: "--" + f.Name}
			if k.Kind == config.Bool {
				s.Value = (f.Value.String() == "true") != b.negate
			}
		}
		if s.Source == config.SourceDefault {
			s.Value = builtinDefault(k.Name)
		}
		out = append(out, s)
	}
	return out
}

// builtinDefault is a key's value when nothing sets it.
func builtinDefault(key string) any {
	switch key {
	case config.KeyImage, config.KeyLocalImage, config.KeyKubernetesImage:
		return DefaultImage
	case config.KeyProfile:
		return profile.Default
	case config.KeyPull:
		return string(spec.PullMissing)
	case config.KeyCacheDir:
		return image.DefaultDir()
	case config.KeyInsecure:
		return []string{}
	case config.KeyAuditLog:
		return audit.DefaultPath()
	case config.KeyAuditEnabled:
		return true
	}
	return ""
}

func valueText(v any) string {
	if l, ok := v.([]string); ok {
		return strings.Join(l, ",")
	}
	return fmt.Sprint(v)
}

func sourceText(s config.Setting) string {
	switch s.Source {
	case config.SourceFile:
		return s.From
	case config.SourceDefault:
		return s.Source
	}
	return s.Source + " " + s.From
}
