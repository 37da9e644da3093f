package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ephem-dev/ephem/pkg/profile"
	"github.com/ephem-dev/ephem/pkg/runtime"
	"go.yaml.in/yaml/v3"
)

// parse decodes a file's YAML strictly into its keys' values.
func parse(file string, data []byte) (map[string]Value, error) {
	vals := map[string]Value{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
		return nil, runtime.NewKind(runtime.ErrConfig, msg)
	}
	if len(doc.Content) == 0 {
		return vals, nil // empty, or only comments
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return vals, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, errorAt(root, "want a mapping of keys, such as \"image: busybox:latest\"")
	}
	return vals, walk(file, "", root, vals)
}

// walk decodes mapping m, whose keys are under prefix, into vals.
func walk(file, prefix string, m *yaml.Node, vals map[string]Value) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		name := k.Value
		if prefix != "" {
			name = prefix + "." + name
		}
		key, ok := KeyNamed(name)
		if prev, dup := vals[name]; ok && dup {
			return errorAt(k, "%s is set twice (also on line %d)", name, prev.Line)
		}
		switch {
		case ok:
			val, err := decode(key, v)
			if err != nil {
				return err
			}
			val.File, val.Line = file, k.Line
			vals[name] = val
		case isSection(name):
			if v.Kind != yaml.MappingNode {
				return errorAt(k, "%s: want a mapping, such as \"%s: {%s}\"", name, name, strings.Join(sectionKeys(name), ": ..., ")+": ...")
			}
			if err := walk(file, name, v, vals); err != nil {
				return err
			}
		default:
			return errorAt(k, "unknown key %q%s", name, suggest(name))
		}
	}
	return nil
}

// resolve follows an alias (*anchor) to its node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// decode checks v against key's kind and rules.
func decode(key Key, v *yaml.Node) (Value, error) {
	val := Value{Key: key.Name}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return val, errorAt(v, "%s has no value", key.Name)
	}
	switch key.Kind {
	case Bool:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			return val, errorAt(v, "%s: want true or false, got %s", key.Name, describe(v))
		}
		val.Bool = v.Value == "true"
	case List:
		if v.Kind != yaml.SequenceNode {
			return val, errorAt(v, "%s: want a list, such as [\"registry.local:5000\"], got %s", key.Name, describe(v))
		}
		for _, e := range v.Content {
			e = resolve(e)
			if e.Kind != yaml.ScalarNode || e.Value == "" {
				return val, errorAt(e, "%s: want a list of strings, got %s", key.Name, describe(e))
			}
			val.List = append(val.List, e.Value)
		}
	default:
		if v.Kind != yaml.ScalarNode {
			return val, errorAt(v, "%s: want a string, got %s", key.Name, describe(v))
		}
		val.Str = v.Value
		if err := check(key.Name, v.Value); err != nil {
			return val, errorAt(v, "%s %q: %s", key.Name, v.Value, err)
		}
	}
	return val, nil
}

// check applies a string key's rules.
func check(key, s string) error {
	switch key {
	case KeyPull:
		if !slices.Contains([]string{"always", "missing", "never"}, s) {
			return fmt.Errorf("use always, missing or never")
		}
	case KeyProfile:
		if !slices.Contains(profile.Names(), s) {
			return fmt.Errorf("use %s", strings.Join(profile.Names(), ", "))
		}
	case KeyCacheDir, KeyAuditLog, KeyRecordDir:
		if !filepath.IsAbs(s) {
			return fmt.Errorf("give an absolute path")
		}
	default:
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("is empty")
		}
	}
	return nil
}

// describe names a node's type for an error.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Value == "" {
		return "an empty string"
	}
	return fmt.Sprintf("%q", n.Value)
}

// isSection says whether name is the section of some dotted key.
func isSection(name string) bool { return len(sectionKeys(name)) > 0 }

// sectionKeys are the keys under section name.
func sectionKeys(name string) []string {
	var out []string
	for _, k := range Keys {
		if rest, ok := strings.CutPrefix(k.Name, name+"."); ok {
			out = append(out, rest)
		}
	}
	return out
}

// suggest is ": did you mean K?" for a known key close to name.
func suggest(name string) string {
	best, dist := "", 3
	for _, k := range Keys {
		if d := distance(name, k.Name); d < dist {
			best, dist = k.Name, d
		}
	}
	if best == "" {
		return " (see docs/config.md for the keys)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// errorAt is a configuration error at n's line.
func errorAt(n *yaml.Node, format string, args ...any) error {
	return runtime.NewKind(runtime.ErrConfig, fmt.Sprintf("line %d: ", n.Line)+fmt.Sprintf(format, args...))
}
