package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// SchemeName is the scheme of a bare NAME: a container looked up by name
// (or ID prefix) in every runtime on this host.
const SchemeName = "name"

// ParseName is the Parse of a bare NAME: letters, digits, '.', '_' and
// '-', beginning with a letter or digit, and not all digits (a process is
// pid:N).
func ParseName(r *Ref, rest string) error {
	if rest == "" {
		return errors.New("missing container name")
	}
	if !isName(rest) {
		return errors.New("a container name has only letters, digits, '.', '_' and '-', and begins with a letter or digit")
	}
	if strings.Trim(rest, "0123456789") == "" {
		return errors.New("a container name is not all digits (a process is pid:N)")
	}
	r.Name = rest
	return nil
}

func isName(s string) bool {
	alnum := func(c rune) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') }
	return alnum(rune(s[0])) && strings.IndexFunc(s, func(c rune) bool {
		return !alnum(c) && c != '.' && c != '_' && c != '-'
	}) < 0
}

// ResolveName resolves a bare NAME: it looks the name up in every local
// runtime that answers (Docker at $DOCKER_HOST; containerd at
// $CONTAINERD_ADDRESS, in every namespace) and resolves the one container
// it names by that container's full reference, which Process.Chosen
// holds. Several containers are ErrInvalid, naming each; none is
// ErrNotFound, naming the runtimes searched and those not reachable.
func ResolveName(ctx context.Context, r Ref) (Process, error) {
	return resolveName(ctx, r.Name, localSearchers())
}

// candidate is a container a bare NAME may mean.
type candidate struct {
	ref   string // its full reference: docker://NAME, containerd://NS/ID
	id    string // its full ID
	exact bool   // NAME is its name or full ID, not an ID prefix
}

// searcher looks names up in one runtime.
type searcher struct {
	runtime string // "docker"
	where   string // its socket, for messages
	find    func(ctx context.Context, name string) ([]candidate, error)
}

// localSearchers returns the searchers of this host's runtimes, found
// where their own tools find them.
func localSearchers() []searcher {
	d := NewDockerClient(os.Getenv("DOCKER_HOST"))
	c := NewContainerdClient(os.Getenv("CONTAINERD_ADDRESS"))
	return []searcher{
		{runtime: "docker", where: d.host, find: d.findName},
		{runtime: "containerd", where: c.address, find: c.findName},
		podmanSearcher(),
		criSearcher(),
	}
}

// searchResult is one searcher's answer.
type searchResult struct {
	found []candidate
	err   error
}

func resolveName(ctx context.Context, name string, rts []searcher) (Process, error) {
	results := make([]searchResult, len(rts))
	var wg sync.WaitGroup
	for i, s := range rts {
		wg.Go(func() {
			found, err := s.find(ctx, name)
			results[i] = searchResult{found: found, err: err}
		})
	}
	wg.Wait()
	var searched, absent []string
	var failed error
	var all []candidate
	for i, s := range rts {
		res := results[i]
		switch {
		case res.err == nil:
			searched = append(searched, s.runtime)
			all = append(all, res.found...)
		case errors.Is(res.err, ErrUnreachable) && SocketDown(res.err):
			absent = append(absent, fmt.Sprintf("%s (%s: %s)", s.runtime, s.where, downReason(res.err)))
		case failed == nil:
			failed = fmt.Errorf("searching %s for %q: %w", s.runtime, name, res.err)
		default:
			failed = fmt.Errorf("%w; searching %s: %w", failed, s.runtime, res.err)
		}
	}
	match := best(all)
	switch {
	case len(match) > 1:
		refs := make([]string, len(match))
		for i, c := range match {
			refs[i] = c.ref
		}
		return Process{}, fmt.Errorf("%w: %q names %d containers on this host: %s: use one of these references",
			ErrInvalid, name, len(match), strings.Join(refs, ", "))
	case failed != nil && len(match) == 1:
		return Process{}, fmt.Errorf("%w; %s is the only match found elsewhere, but may not be the only one: use its full reference", failed, match[0].ref)
	case failed != nil:
		return Process{}, failed
	case len(match) == 0:
		return Process{}, notFound(name, searched, absent)
	}
	return resolveCandidate(ctx, match[0])
}

// best returns the candidates NAME means: those it names exactly, else
// those whose ID it begins. A container found in two runtimes (Docker's
// containers are also containerd's) is kept once, as the first found.
func best(all []candidate) []candidate {
	var exact, prefix []candidate
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.id] {
			continue
		}
		seen[c.id] = true
		if c.exact {
			exact = append(exact, c)
		} else {
			prefix = append(prefix, c)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return prefix
}

// notFound is the error of a name no runtime has.
func notFound(name string, searched, absent []string) error {
	if len(searched) == 0 {
		return fmt.Errorf("%w: no container runtime on this host answers to find %q: not reachable: %s (set DOCKER_HOST or CONTAINERD_ADDRESS, or name the target in full)",
			ErrNotFound, name, strings.Join(absent, ", "))
	}
	where := strings.Join(searched, " or ")
	if len(absent) > 0 {
		where += " (not reachable: " + strings.Join(absent, ", ") + ")"
	}
	return fmt.Errorf("%w: no container %q in %s: list them with docker ps or ctr -n NAMESPACE containers ls",
		ErrNotFound, name, where)
}

// downReason says in a few words why a socket did not answer.
func downReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "no answer"
}

// resolveCandidate resolves c by its full reference, as that reference
// would be, and says so in the process's description.
func resolveCandidate(ctx context.Context, c candidate) (Process, error) {
	ref, err := Parse(c.ref)
	if err != nil {
		return Process{}, err
	}
	p, err := Resolve(ctx, ref)
	if err != nil {
		return Process{}, err
	}
	p.Description += " (" + c.ref + ")"
	p.Chosen = c.ref
	return p, nil
}

// dockerSummary is one container of the daemon's list.
type dockerSummary struct {
	ID    string   `json:"Id"`
	Names []string `json:"Names"`
}

// minIDPrefix is the shortest ID prefix a bare name matches: "db" is a
// name, not the start of one container's ID in 256 (at 4 hex digits, one
// in 65,536).
const minIDPrefix = 4

// idPrefix reports whether name is an ID prefix of id, long enough to be
// meant as one.
func idPrefix(id, name string) bool {
	return len(name) >= minIDPrefix && strings.HasPrefix(id, name)
}

// findName lists the daemon's containers, running or not, that name
// (a container name, a full ID or an ID prefix) may mean.
func (c *DockerClient) findName(ctx context.Context, name string) ([]candidate, error) {
	code, body, err := c.get(ctx, "/containers/json?all=1")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, dockerStatusError(code, body)
	}
	var list []dockerSummary
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding docker's container list: %w", err)
	}
	var out []candidate
	for _, s := range list {
		exact := s.ID == name
		ref := s.ID
		for _, n := range s.Names {
			n = strings.TrimPrefix(n, "/")
			if strings.Contains(n, "/") {
				continue // a legacy link's alias
			}
			exact = exact || n == name
			ref = n
		}
		if exact || idPrefix(s.ID, name) {
			out = append(out, candidate{ref: "docker://" + ref, id: s.ID, exact: exact})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref < out[j].ref })
	return out, nil
}

// findName lists the containers of every namespace that name (a
// nerdctl/name label, a full ID or an ID prefix) may mean.
func (c *ContainerdClient) findName(ctx context.Context, name string) ([]candidate, error) {
	ctx, cancel := context.WithTimeout(ctx, containerdTimeout)
	defer cancel()
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	defer c.Close()
	nss, err := c.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, ns := range nss {
		l, err := c.listing(ctx, ns, name, nil)
		if err != nil {
			return nil, c.apiError(err)
		}
		for i, id := range l.ids {
			exact := id == name || l.names[i] == name
			if exact || idPrefix(id, name) {
				out = append(out, candidate{ref: "containerd://" + ns + "/" + id, id: id, exact: exact})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref < out[j].ref })
	return out, nil
}
