package kube

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
)

var _ runtime.Inspector = (*Backend)(nil)

// hostFromPod is NamespaceReport.HostFrom on Kubernetes: a pod cannot see
// its node's namespaces.
const hostFromPod = "the node (not visible from a pod)"

// Inspect implements runtime.Inspector: a helper debugger (reused, or
// added once and reused later) reads the target's /proc entries and its
// own; its namespaces are what a debug container of ephem debug shares.
func (b *Backend) Inspect(ctx context.Context, ref target.Ref) (*runtime.NamespaceReport, error) {
	k, err := b.callFor(ref)
	if err != nil {
		return nil, err
	}
	h, err := k.helperFor(ctx, ref, "ns", "")
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	var stderr tailBuffer
	if err := k.exec(ctx, h, script(scriptInspect, h), nil, &out, &stderr); err != nil {
		return nil, k.scriptError(ctx, h, "inspecting "+ref.String(), err, stderr.String())
	}
	r := parseReport(out.String())
	r.Target, r.HostFrom = ref.String(), hostFromPod
	if len(r.Namespaces) == 0 {
		return nil, fmt.Errorf("%w: inspecting %s: helper debug container %s printed no namespaces: %s", runtime.ErrOS, ref, h.name, lastLine(stderr.String()))
	}
	return r, nil
}

// parseReport reads scriptInspect's sections.
func parseReport(s string) *runtime.NamespaceReport {
	r := &runtime.NamespaceReport{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "@") {
			section = line[1:]
			continue
		}
		switch section {
		case "ns":
			f := strings.Fields(line)
			if len(f) == 3 {
				r.Namespaces = append(r.Namespaces, runtime.Namespace{Type: f[0], Target: f[1], Debug: f[2], Shared: f[1] == f[2]})
			}
		case "init":
			if line != "" {
				r.Init = append(r.Init, line)
			}
		case "uid_map":
			r.UIDMap = append(r.UIDMap, strings.Join(strings.Fields(line), " "))
		case "gid_map":
			r.GIDMap = append(r.GIDMap, strings.Join(strings.Fields(line), " "))
		case "status":
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "CapEff":
				r.CapEff = v
			case "Seccomp":
				r.Seccomp = runtime.SeccompMode(v)
			}
		case "cgroup":
			if line != "" {
				r.Cgroup = append(r.Cgroup, line)
			}
		case "root":
			r.Root = line
		}
	}
	return r
}
