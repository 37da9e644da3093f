package target

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"syscall"
)

// ErrPermission marks a target the user running ephem may not see: another
// user's rootless podman container (exit 77, "needs root").
var ErrPermission = errors.New("needs root")

// PodmanRootful is the USER of podman://USER/NAME that names the rootful
// storage (/var/lib/containers/storage) rather than a user's rootless one.
const PodmanRootful = "root"

// ParsePodman is the Parse of "podman://[USER/]NAME|ID": a container of
// the rootful storage (USER root) or of USER's rootless storage; without
// USER, of any storage ephem may read. Ref.Namespace holds USER.
func ParsePodman(r *Ref, rest string) error {
	user, name, ok := strings.Cut(rest, "/")
	if !ok {
		user, name = "", rest
	} else if !validUserName(user) {
		return fmt.Errorf("%q is not a user name (letters, digits, '.', '_' and '-')", user)
	}
	if err := ParseContainer(r, name); err != nil {
		return err
	}
	r.Namespace = user
	return nil
}

// validUserName reports whether s may be a login name.
func validUserName(s string) bool {
	return s != "" && len(s) <= 64 && s[0] != '-' && strings.IndexFunc(s, func(c rune) bool {
		return (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-'
	}) < 0
}

// ResolvePodman resolves "podman://[USER/]NAME|ID" by reading podman's
// storage, without podman or its service: the rootful storage and, as
// root, every user's rootless storage (as another user, that user's own).
// A name in several storages is ErrInvalid, naming each container by its
// full reference (podman://USER/NAME). A running container resolves to its
// init process; a stopped one to its layers (Process.Stopped). With no
// podman storage at all, a full ID is still found from /proc.
func ResolvePodman(_ context.Context, r Ref) (Process, error) {
	return defaultPodmanHost().resolve(r)
}

// podmanHost is where podman keeps its storages on a host, and who asks:
// the real paths, or a test's.
type podmanHost struct {
	graphRoot, runRoot, tmpDir string // the rootful storage and libpod's tmpdir
	passwd                     string // /etc/passwd
	proc                       string // /proc
	runUser                    string // /run/user
	uid                        int    // the effective UID of the caller
	dataHome, runtimeDir       string // $XDG_DATA_HOME, $XDG_RUNTIME_DIR of a non-root caller
}

// podmanRoot prefixes the paths of defaultPodmanHost but /proc: a test's
// stand-in for a host without podman (podman_export_test.go).
var podmanRoot = ""

func defaultPodmanHost() podmanHost {
	r := podmanRoot
	h := podmanHost{
		graphRoot: r + "/var/lib/containers/storage", runRoot: r + "/run/containers/storage", tmpDir: r + "/run/libpod",
		passwd: r + "/etc/passwd", proc: "/proc", runUser: r + "/run/user", uid: os.Geteuid(),
	}
	if h.uid != 0 {
		h.dataHome, h.runtimeDir = os.Getenv("XDG_DATA_HOME"), os.Getenv("XDG_RUNTIME_DIR")
	}
	h.graphRoot, h.runRoot = storageConf(r+"/etc/containers/storage.conf", h.graphRoot, h.runRoot)
	return h
}

func (h podmanHost) resolve(r Ref) (Process, error) {
	stores, err := h.stores(r.Namespace)
	if errors.Is(err, ErrUnreachable) && IsFullID(r.Name) {
		return h.resolveWithoutStorage(err, r.Name)
	}
	if err != nil {
		return Process{}, err
	}
	found, err := searchStores(stores, r.Name, false)
	if err != nil {
		return Process{}, err
	}
	switch {
	case len(found) > 1:
		refs := make([]string, len(found))
		for i, c := range found {
			refs[i] = c.ref()
		}
		return Process{}, fmt.Errorf("%w: %q names %d podman containers: %s: use one of these references",
			ErrInvalid, r.Raw, len(found), strings.Join(refs, ", "))
	case len(found) == 0:
		return Process{}, fmt.Errorf("%w: no podman container %q in %s: list them with podman ps -a%s",
			ErrNotFound, r.Name, describeStores(stores), asEachUser(stores))
	}
	return h.process(found[0])
}

// resolveWithoutStorage finds a running container by its full ID from
// /proc when no podman storage could be read.
func (h podmanHost) resolveWithoutStorage(storeErr error, id string) (Process, error) {
	pid, err := procScan{proc: h.proc}.find(PodmanRuntime, id)
	if err != nil {
		pid = h.conmonChild(id)
	}
	if pid == 0 {
		return Process{}, fmt.Errorf("%w; no process in /proc belongs to container %s either", storeErr, id)
	}
	return Process{PID: pid, Description: "podman container " + id + " " + ViaProcNote, ViaProc: true}, CheckAlive(pid)
}

// process resolves a container found in a storage: its init process when
// it runs, else its filesystem.
func (h podmanHost) process(c podmanContainer) (Process, error) {
	desc := "podman container " + c.name()
	if c.store.owner != PodmanRootful {
		desc += " of user " + c.store.owner
	}
	if pid := h.runningPID(c); pid > 0 {
		return Process{PID: pid, Description: desc}, CheckAlive(pid)
	}
	return Process{Description: desc, Stopped: c.filesystem()}, nil
}

// stores returns the storages a reference with user may name: user's
// (PodmanRootful: the rootful one), or every one the caller may read. It
// is ErrPermission for another user's when not root, ErrNotFound for a
// user that does not exist, and ErrUnreachable (wrapping ENOENT) when no
// storage exists at all.
func (h podmanHost) stores(user string) ([]*podmanStore, error) {
	users, err := readPasswd(h.passwd)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("finding the users' rootless podman storages: %w", err)
	}
	if h.uid != 0 {
		self := users.byUID(h.uid)
		if user != "" && user != self.name {
			who := "the rootful storage"
			if user != PodmanRootful {
				who = "user " + user + "'s rootless containers"
			}
			return nil, fmt.Errorf("%w: only root may debug %s (ephem runs as uid %d): run ephem as root",
				ErrPermission, who, h.uid)
		}
		if self.name == "" {
			self = passwdEntry{name: fmt.Sprint(h.uid), uid: h.uid, home: os.Getenv("HOME")}
		}
		return existing([]*podmanStore{h.userStore(self)}, "the rootless podman storage of uid "+fmt.Sprint(h.uid))
	}
	switch user {
	case "":
		all := []*podmanStore{h.rootful()}
		for _, u := range users {
			if u.uid != 0 {
				all = append(all, h.userStore(u))
			}
		}
		return existing(all, "podman storage on this host ("+h.graphRoot+", ~USER/.local/share/containers/storage)")
	case PodmanRootful:
		return existing([]*podmanStore{h.rootful()}, "rootful podman storage at "+h.graphRoot)
	}
	for _, u := range users {
		if u.name == user {
			return existing([]*podmanStore{h.userStore(u)}, "rootless podman storage of user "+user)
		}
	}
	return nil, fmt.Errorf("%w: no user %q on this host (podman://USER/NAME names a user's rootless container; podman://root/NAME a rootful one)",
		ErrNotFound, user)
}

// existing keeps the storages that hold containers, or says none does.
func existing(stores []*podmanStore, what string) ([]*podmanStore, error) {
	var out []*podmanStore
	for _, s := range stores {
		if s.owned() && len(s.containerFiles()) > 0 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s: %w (is podman installed? it keeps no state elsewhere)", ErrUnreachable, what, syscall.ENOENT)
	}
	return out, nil
}

func (h podmanHost) rootful() *podmanStore {
	return &podmanStore{owner: PodmanRootful, graphRoot: h.graphRoot, runRoot: h.runRoot, tmpDir: h.tmpDir}
}

// userStore returns u's rootless storage where podman puts it by default
// (or where the user's storage.conf says).
func (h podmanHost) userStore(u passwdEntry) *podmanStore {
	data := u.home + "/.local/share"
	run := fmt.Sprintf("%s/%d", h.runUser, u.uid)
	if u.uid == h.uid {
		if h.dataHome != "" {
			data = h.dataHome
		}
		if h.runtimeDir != "" {
			run = h.runtimeDir
		}
	}
	if _, err := os.Stat(run); err != nil {
		run = fmt.Sprintf("/tmp/podman-run-%d", u.uid)
	}
	graph, runRoot := data+"/containers/storage", run+"/containers"
	if u.uid == h.uid {
		// Root reads no user's configuration: it could point root at
		// another storage than the user's own.
		graph, runRoot = storageConf(u.home+"/.config/containers/storage.conf", graph, runRoot)
	}
	return &podmanStore{owner: u.name, uid: u.uid, graphRoot: graph, runRoot: runRoot, tmpDir: run + "/libpod/tmp"}
}

// searchStores returns the containers of stores that name means: those it
// names (or whose full ID it is), else those whose ID it begins (any
// prefix, or one of at least minIDPrefix digits when minPrefix is set).
func searchStores(stores []*podmanStore, name string, minPrefix bool) ([]podmanContainer, error) {
	var exact, prefix []podmanContainer
	for _, s := range stores {
		list, err := s.containers()
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			switch {
			case c.ID == name || c.hasName(name):
				exact = append(exact, c)
			case strings.HasPrefix(c.ID, name) && (!minPrefix || len(name) >= minIDPrefix):
				prefix = append(prefix, c)
			}
		}
	}
	if len(exact) == 0 {
		exact = prefix
	}
	sort.Slice(exact, func(i, j int) bool { return exact[i].ref() < exact[j].ref() })
	return exact, nil
}

// describeStores names the storages searched, for messages.
func describeStores(stores []*podmanStore) string {
	names := make([]string, len(stores))
	for i, s := range stores {
		names[i] = s.owner + "'s rootless storage"
		if s.owner == PodmanRootful {
			names[i] = "the rootful storage"
		}
	}
	return strings.Join(names, ", ")
}

// asEachUser says how to list rootless containers when any was searched.
func asEachUser(stores []*podmanStore) string {
	for _, s := range stores {
		if s.owner != PodmanRootful {
			return " (as each user for rootless ones)"
		}
	}
	return ""
}

// podmanSearcher looks bare NAMEs up in podman's storages.
func podmanSearcher() searcher {
	h := defaultPodmanHost()
	return searcher{runtime: "podman", where: h.graphRoot, find: h.findName}
}

// findName lists the podman containers, running or not, that name (a
// container name, a full ID or an ID prefix) may mean, each by its full
// reference podman://USER/NAME.
func (h podmanHost) findName(_ context.Context, name string) ([]candidate, error) {
	stores, err := h.stores("")
	if err != nil {
		return nil, err
	}
	found, err := searchStores(stores, name, true)
	if err != nil {
		return nil, err
	}
	out := make([]candidate, len(found))
	for i, c := range found {
		out[i] = candidate{ref: c.ref(), id: c.ID, exact: c.ID == name || c.hasName(name)}
	}
	return out, nil
}
