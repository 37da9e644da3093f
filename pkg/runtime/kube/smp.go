package kube

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// The strategic merge patch of --custom, as kubectl debug --custom applies
// it, without apimachinery's strategicpatch package: that package imports
// the OpenAPI models and the protobuf runtime, 6 MB of ephem's binary and
// as much of its memory. The rules are the same for what a container
// holds (smp_test.go compares every case with strategicpatch itself): an
// object merges field by field, null deletes a field, a list whose Go
// field is tagged patchStrategy "merge" merges its elements by their
// patchMergeKey (an element with "$patch": "delete" is removed), a merge
// list of scalars is a union, and any other value replaces the original.
// An object with "$patch": "replace" replaces, "$patch": "delete" deletes;
// the other directives ($retainKeys, $setElementOrder, ...) are refused.

// strategicMerge applies patch to orig, JSON objects of Go type t.
func strategicMerge(orig, patch []byte, t reflect.Type) ([]byte, error) {
	var o, p map[string]any
	if err := json.Unmarshal(orig, &o); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	merged, err := mergeObject(o, p, t)
	if err != nil {
		return nil, err
	}
	return json.Marshal(merged)
}

// mergeObject merges patch into orig (either may be nil) for Go type t
// (a struct, or a map); "$patch": "delete" leaves an empty object, as
// apimachinery does.
func mergeObject(orig, patch map[string]any, t reflect.Type) (map[string]any, error) {
	t = deref(t)
	if d, ok := patch["$patch"]; ok {
		switch d {
		case "replace":
			return withoutDirective(patch), nil
		case "delete":
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("unknown $patch %v", d)
	}
	out := make(map[string]any, len(orig)+len(patch))
	for k, v := range orig {
		out[k] = v
	}
	for k, pv := range patch {
		if strings.HasPrefix(k, "$") {
			return nil, fmt.Errorf("the directive %q is not supported: write the fields themselves", k)
		}
		if pv == nil {
			delete(out, k)
			continue
		}
		ft, strategy, key := fieldOf(t, k)
		switch pv := pv.(type) {
		case map[string]any:
			ov, _ := out[k].(map[string]any)
			m, err := mergeObject(ov, pv, ft)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = m
		case []any:
			if !strings.Contains(strategy, "merge") {
				out[k] = pv
				continue
			}
			ov, _ := out[k].([]any)
			l, err := mergeList(ov, pv, deref(ft).Elem(), key)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = l
		default:
			out[k] = pv
		}
	}
	return out, nil
}

// mergeList merges the elements of a patch list into orig by their field
// key (objects of Go type t), or as a union (scalars). The order is
// apimachinery's: the patch's elements in the patch's order, with the
// original's other elements placed among them by their original order
// where both are in the original (normalizeElementOrder).
func mergeList(orig, patch []any, t reflect.Type, key string) ([]any, error) {
	id := func(e any) any {
		if m, ok := e.(map[string]any); ok && key != "" {
			return m[key]
		}
		return e
	}
	origIndex := func(e any) int {
		for i, o := range orig {
			if reflect.DeepEqual(id(o), id(e)) {
				return i
			}
		}
		return -1
	}
	var patched []any
	touched := map[int]bool{}
	for _, pe := range patch {
		pm, isMap := pe.(map[string]any)
		if isMap && key != "" {
			if _, ok := pm[key]; !ok {
				return nil, fmt.Errorf("an element has no %q, the key its list merges by", key)
			}
		}
		i := origIndex(pe)
		if i >= 0 {
			touched[i] = true
		}
		if !isMap || key == "" { // scalars: a union
			if !containsValue(patched, pe) {
				patched = append(patched, pe)
			}
			continue
		}
		if pm["$patch"] == "delete" {
			continue
		}
		var om map[string]any
		if i >= 0 {
			om, _ = orig[i].(map[string]any)
		}
		m, err := mergeObject(om, pm, t)
		if err != nil {
			return nil, err
		}
		patched = append(patched, m)
	}
	var serverOnly []any
	for i, o := range orig {
		if !touched[i] {
			serverOnly = append(serverOnly, o)
		}
	}
	// mergeSortedSlice: a server-only element goes first when both it and
	// the next patch element are in the original, it before.
	out := make([]any, 0, len(patched)+len(serverOnly))
	for len(patched) > 0 || len(serverOnly) > 0 {
		switch {
		case len(patched) == 0:
			out, serverOnly = append(out, serverOnly[0]), serverOnly[1:]
		case len(serverOnly) == 0:
			out, patched = append(out, patched[0]), patched[1:]
		default:
			li, ri := origIndex(serverOnly[0]), origIndex(patched[0])
			if li >= 0 && ri >= 0 && li < ri {
				out, serverOnly = append(out, serverOnly[0]), serverOnly[1:]
			} else {
				out, patched = append(out, patched[0]), patched[1:]
			}
		}
	}
	return out, nil
}

// fieldOf returns the Go type of field name (its JSON name) of t, and its
// patch strategy and merge key; a map's fields are its values.
func fieldOf(t reflect.Type, name string) (reflect.Type, string, string) {
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), "", ""
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("json"), ",")
			if tag[0] == name {
				return f.Type, f.Tag.Get("patchStrategy"), f.Tag.Get("patchMergeKey")
			}
			if tag[0] == "" && f.Anonymous && len(tag) > 1 && tag[1] == "inline" {
				if ft, s, k := fieldOf(deref(f.Type), name); ft != nil {
					return ft, s, k
				}
			}
		}
	}
	return reflect.TypeFor[any](), "", ""
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func withoutDirective(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != "$patch" {
			out[k] = v
		}
	}
	return out
}

func containsValue(l []any, v any) bool {
	for _, e := range l {
		if reflect.DeepEqual(e, v) {
			return true
		}
	}
	return false
}
