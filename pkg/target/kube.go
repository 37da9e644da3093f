package target

import (
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Kubernetes reference forms. Workloads resolve to one running pod of
// theirs (or all of them with --all-pods).
func init() {
	pod := func(r *Ref, rest string) error { return parsePodPath(r, rest, false) }
	for _, p := range []string{"pod/", "pods/", "po/"} {
		schemes = append(schemes, scheme{name: "pod", kind: Kubernetes, example: "pod/NAME[/CONTAINER]", prefix: p, parse: pod})
	}
	schemes = append(schemes, scheme{name: "pod", kind: Kubernetes, example: "k8s://[NAMESPACE/]POD[/CONTAINER]", prefix: "k8s://",
		parse: func(r *Ref, rest string) error { return parsePodPath(r, rest, true) }})
	for _, w := range []struct{ name, short, long string }{
		{"deployment", "deploy/", "deployment/"}, {"statefulset", "sts/", "statefulset/"},
		{"daemonset", "ds/", "daemonset/"}, {"replicaset", "rs/", "replicaset/"}, {"job", "job/", "jobs/"},
		{"node", "node/", "nodes/"},
	} {
		ex := strings.TrimSuffix(w.short, "/") + "/NAME"
		for _, p := range []string{w.short, w.long, w.name + "s/"} {
			schemes = append(schemes, scheme{name: w.name, kind: Kubernetes, example: ex, prefix: p, parse: parseObjectName})
		}
	}
	// Keep Supported() short: one example per form.
	seen := map[string]bool{}
	for i := range schemes {
		if seen[schemes[i].example] {
			schemes[i].hidden = true
		}
		seen[schemes[i].example] = true
	}
}

// parsePodPath parses NAME[/CONTAINER], or with k8s:// also NS/POD and
// NS/POD/CONTAINER.
func parsePodPath(r *Ref, rest string, withNamespace bool) error {
	parts := strings.Split(rest, "/")
	switch {
	case withNamespace && len(parts) == 3:
		r.Namespace, r.Name, r.Container = parts[0], parts[1], parts[2]
	case withNamespace && len(parts) == 2:
		r.Namespace, r.Name = parts[0], parts[1]
	case len(parts) == 2:
		r.Name, r.Container = parts[0], parts[1]
	case len(parts) == 1:
		r.Name = parts[0]
	default:
		return errors.New("too many '/'")
	}
	for _, v := range []string{r.Namespace, r.Name} {
		if v == "" && v == r.Name {
			return errors.New("missing pod name")
		}
		if v != "" {
			if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
				return errors.New(strings.Join(errs, "; "))
			}
		}
	}
	if r.Container != "" {
		if errs := validation.IsDNS1123Label(r.Container); len(errs) > 0 {
			return errors.New("container name: " + strings.Join(errs, "; "))
		}
	}
	return nil
}

func parseObjectName(r *Ref, rest string) error {
	if rest == "" {
		return errors.New("missing name")
	}
	if errs := validation.IsDNS1123Subdomain(rest); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	r.Name = rest
	return nil
}
