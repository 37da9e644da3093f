package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

var (
	_ runtime.TargetCompleter = (*Backend)(nil)
	_ runtime.FlagCompleter   = (*Backend)(nil)
)

// completeTimeout bounds one completion's requests to the API server.
const completeTimeout = 400 * time.Millisecond

// completionKinds are the reference prefixes completion offers, with the
// API path (under the namespace, "" for cluster-wide objects) listing
// their objects.
var completionKinds = []struct {
	prefix, path, desc string
	namespaced         bool
}{
	{"pod/", "/api/v1", "pods", true},
	{"deployment/", "/apis/apps/v1", "deployments", true},
	{"statefulset/", "/apis/apps/v1", "statefulsets", true},
	{"daemonset/", "/apis/apps/v1", "daemonsets", true},
	{"node/", "/api/v1", "nodes", false},
}

// CompleteTargets implements runtime.TargetCompleter: the kind prefixes
// (pod/, deployment/, statefulset/, daemonset/, node/) while the word has
// no '/', then the objects of that kind in the namespace (-n's, else the
// kubeconfig context's), or the cluster's nodes.
func (b *Backend) CompleteTargets(ctx context.Context, toComplete string) ([]runtime.Completion, error) {
	kind, name, ok := strings.Cut(toComplete, "/")
	var out []runtime.Completion
	for _, k := range completionKinds {
		if !ok {
			if strings.HasPrefix(k.prefix, toComplete) {
				out = append(out, runtime.Completion{Value: k.prefix, Description: "a Kubernetes " + strings.TrimSuffix(k.desc, "s")})
			}
			continue
		}
		if k.prefix != kind+"/" {
			continue
		}
		path := k.path + "/" + k.desc
		if k.namespaced {
			path = k.path + "/namespaces/" + b.namespace + "/" + k.desc
		}
		names, err := b.listNames(ctx, path)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if strings.HasPrefix(n.name, name) {
				out = append(out, runtime.Completion{Value: k.prefix + n.name, Description: n.desc})
			}
		}
	}
	return out, nil
}

// CompleteFlag implements runtime.FlagCompleter: -n/--namespace completes
// the cluster's namespaces.
func (b *Backend) CompleteFlag(ctx context.Context, name, toComplete string) ([]runtime.Completion, error) {
	if name != "namespace" {
		return nil, nil
	}
	names, err := b.listNames(ctx, "/api/v1/namespaces")
	if err != nil {
		return nil, err
	}
	var out []runtime.Completion
	for _, n := range names {
		if strings.HasPrefix(n.name, toComplete) {
			out = append(out, runtime.Completion{Value: n.name, Description: n.desc})
		}
	}
	return out, nil
}

// namedObject is one listed object: its name, and for pods their phase.
type namedObject struct {
	name, desc string
}

// listNames lists the objects at the API path, sorted by name, within
// completeTimeout.
func (b *Backend) listNames(ctx context.Context, path string) ([]namedObject, error) {
	if b.config == nil {
		return nil, fmt.Errorf("%w: completing targets: no cluster configuration", runtime.ErrUnsupported)
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	c := rest.CopyConfig(b.config)
	c.GroupVersion, c.APIPath = &corev1.SchemeGroupVersion, "/api"
	c.NegotiatedSerializer = kubeCodecs().codecs.WithoutConversion()
	c.Timeout = completeTimeout
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("creating the completion client: %w", err)
	}
	raw, err := rc.Get().AbsPath(path).Param("limit", "500").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", path, err)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	out := make([]namedObject, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, namedObject{name: it.Metadata.Name, desc: it.Status.Phase})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}
