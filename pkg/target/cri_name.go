package target

import (
	"context"
	"os"
	"sort"
)

// criSearcher is the bare-NAME searcher of the CRI runtime at
// $CONTAINER_RUNTIME_ENDPOINT, else at the first usual socket that answers.
func criSearcher() searcher {
	where := os.Getenv(EnvCRIEndpoint)
	if where == "" {
		where = "the usual CRI sockets"
	}
	return searcher{runtime: "cri", where: where, find: findCRIName}
}

// findCRIName lists the running CRI containers that name (a container's
// name within its pod, a full ID or an ID prefix) may mean: a name is
// found as cri://NAMESPACE/POD/CONTAINER, an ID as cri://ID.
func findCRIName(ctx context.Context, name string) ([]candidate, error) {
	ctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	c, err := NewCRIClient(os.Getenv(EnvCRIEndpoint))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c.findName(ctx, name)
}

// findName lists the running containers name may mean.
func (c *CRIClient) findName(ctx context.Context, name string) ([]candidate, error) {
	ctrs, err := c.listContainers(ctx, true)
	if err != nil {
		return nil, c.apiError(err)
	}
	var out []candidate
	var pods map[string]criSandbox
	for _, ctr := range ctrs {
		id := ctr.id
		switch {
		case ctr.name == name:
			if pods == nil {
				if pods, err = c.sandboxes(ctx); err != nil {
					return nil, err
				}
			}
			md, ok := pods[ctr.podSandboxID]
			if !ok {
				out = append(out, candidate{ref: "cri://" + id, id: id, exact: true})
				continue
			}
			out = append(out, candidate{ref: "cri://" + md.namespace + "/" + md.name + "/" + name, id: id, exact: true})
		case id == name || idPrefix(id, name):
			out = append(out, candidate{ref: "cri://" + id, id: id, exact: id == name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref < out[j].ref })
	return out, nil
}

// sandboxes returns the metadata of every pod sandbox by its ID.
func (c *CRIClient) sandboxes(ctx context.Context) (map[string]criSandbox, error) {
	sbs, err := c.listSandboxes(ctx)
	if err != nil {
		return nil, c.apiError(err)
	}
	m := make(map[string]criSandbox, len(sbs))
	for _, sb := range sbs {
		m[sb.id] = sb
	}
	return m, nil
}
