package kube

import (
	"errors"
	"strings"

	"github.com/ephem-dev/ephem/pkg/target"
	"k8s.io/apimachinery/pkg/util/validation"
)

// schemes are the Kubernetes reference forms: pods, workloads (one running
// pod of theirs, or all of them with --all-pods) and nodes.
func schemes() []target.Scheme {
	rows := []target.Scheme{
		{Name: target.SchemePod, Prefixes: []string{"pod/", "pods/", "po/"}, Example: "pod/NAME[/CONTAINER]",
			Parse: func(r *target.Ref, rest string) error { return parsePodPath(r, rest, false) }},
		{Name: target.SchemePod, Prefixes: []string{"k8s://"}, Example: "k8s://[NAMESPACE/]POD[/CONTAINER]",
			Parse: func(r *target.Ref, rest string) error { return parsePodPath(r, rest, true) }},
	}
	for _, w := range []struct{ name, short, long string }{
		{target.SchemeDeployment, "deploy", "deployment"}, {target.SchemeStatefulSet, "sts", "statefulset"},
		{target.SchemeDaemonSet, "ds", "daemonset"}, {target.SchemeReplicaSet, "rs", "replicaset"},
		{target.SchemeJob, "job", "job"}, {target.SchemeNode, "node", "node"},
	} {
		prefixes := []string{w.short + "/", w.long + "s/"}
		if w.long != w.short {
			prefixes = append(prefixes, w.long+"/")
		}
		rows = append(rows, target.Scheme{Name: w.name, Prefixes: prefixes, Example: w.short + "/NAME", Parse: parseObjectName})
	}
	return rows
}

// parsePodPath parses NAME[/CONTAINER], or with k8s:// also NS/POD and
// NS/POD/CONTAINER.
func parsePodPath(r *target.Ref, rest string, withNamespace bool) error {
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

func parseObjectName(r *target.Ref, rest string) error {
	if rest == "" {
		return errors.New("missing name")
	}
	if errs := validation.IsDNS1123Subdomain(rest); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	r.Name = rest
	return nil
}
