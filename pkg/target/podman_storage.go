package target

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// podmanStore is one podman storage: the rootful one or a user's rootless
// one. Its graph root holds DRIVER-containers/containers.json (the
// containers) and the layers; its run root each running container's
// userdata/pidfile and conmon.pid; libpod's tmpdir the events log.
type podmanStore struct {
	owner                      string // PodmanRootful, or the user's name
	uid                        int
	graphRoot, runRoot, tmpDir string
	files                      []string // containerFiles, once read
}

// podmanContainer is one entry of containers.json.
type podmanContainer struct {
	ID     string   `json:"id"`
	Names  []string `json:"names"`
	Layer  string   `json:"layer"`
	driver string   // the storage driver: overlay, vfs
	store  *podmanStore
}

// maxContainersJSON bounds the containers.json ephem reads.
const maxContainersJSON = 64 << 20

// containerFiles returns the storage's containers.json files, one per
// storage driver used.
func (s *podmanStore) containerFiles() []string {
	if s.files == nil {
		s.files, _ = filepath.Glob(filepath.Join(s.graphRoot, "*-containers", "containers.json"))
	}
	return s.files
}

// owned reports whether the storage is its owner's: a user's rootless
// storage that is not the user's own (a link to another) is not read.
func (s *podmanStore) owned() bool {
	if s.owner == PodmanRootful {
		return true
	}
	var st syscall.Stat_t
	return syscall.Stat(s.graphRoot, &st) == nil && int(st.Uid) == s.uid
}

// containers lists the storage's containers.
func (s *podmanStore) containers() ([]podmanContainer, error) {
	var out []podmanContainer
	for _, f := range s.containerFiles() {
		b, err := readBounded(f, maxContainersJSON)
		if err != nil {
			return nil, fmt.Errorf("reading podman's containers: %w", err)
		}
		var list []podmanContainer
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("decoding podman's containers in %s: %w", f, err)
		}
		driver := strings.TrimSuffix(filepath.Base(filepath.Dir(f)), "-containers")
		for i := range list {
			list[i].driver, list[i].store = driver, s
			if IsFullID(list[i].ID) {
				out = append(out, list[i])
			}
		}
	}
	return out, nil
}

// readBounded reads a file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, err
}

func (c podmanContainer) hasName(name string) bool {
	for _, n := range c.Names {
		if n == name {
			return true
		}
	}
	return false
}

// name is the container's name, else its ID.
func (c podmanContainer) name() string {
	if len(c.Names) > 0 {
		return c.Names[0]
	}
	return c.ID
}

// ref is the container's full reference: podman://USER/NAME.
func (c podmanContainer) ref() string { return "podman://" + c.store.owner + "/" + c.name() }

// userdata is a file of the container's run-time state.
func (c podmanContainer) userdata(name string) string {
	return filepath.Join(c.store.runRoot, c.driver+"-containers", c.ID, "userdata", name)
}

// runningPID returns the host PID of the container's init process, or 0
// when it does not run: the PID in its pidfile, if that process is still
// the container's (in its libpod-ID cgroup, or a child of the conmon that
// watches it: a stale pidfile's PID may have been reused).
func (h podmanHost) runningPID(c podmanContainer) int {
	b, err := os.ReadFile(c.userdata("pidfile"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if c.store.owner != PodmanRootful && !h.mapsUID(pid, c.store.uid) {
		return 0 // not in a user namespace of the storage's owner
	}
	if cg, err := os.ReadFile(filepath.Join(h.proc, strconv.Itoa(pid), "cgroup")); err == nil && cgroupMatches(string(cg), PodmanRuntime, c.ID) {
		return pid
	}
	if h.isConmonOf(procScan{proc: h.proc}.ppid(pid), c.ID) {
		return pid
	}
	return 0
}

// mapsUID reports whether pid is in a user namespace, not the host's, that
// maps the host user uid, as a rootless container of the user uid is (its
// root is uid, or with --userns=keep-id the user's own ID is, root then
// being one of the user's subordinate IDs): only uid or root can make such
// a namespace, so what a user's storage says may name only that user's
// processes.
func (h podmanHost) mapsUID(pid, uid int) bool {
	b, err := os.ReadFile(filepath.Join(h.proc, strconv.Itoa(pid), "uid_map"))
	if err != nil {
		return false
	}
	mapped := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		outside, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil {
			return false
		}
		if count == 1<<32-1 {
			return false // the host's user namespace (or one as wide)
		}
		mapped = mapped || (uint64(uid) >= outside && uint64(uid)-outside < count)
	}
	return mapped
}

// isConmonOf reports whether pid is the conmon of container id.
func (h podmanHost) isConmonOf(pid int, id string) bool {
	if pid <= 0 {
		return false
	}
	comm, err := os.ReadFile(filepath.Join(h.proc, strconv.Itoa(pid), "comm"))
	if err != nil || strings.TrimSpace(string(comm)) != "conmon" {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join(h.proc, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if (args[i] == "-c" || args[i] == "--cid") && args[i+1] == id {
			return true
		}
	}
	return false
}

// conmonChild returns the PID of the child of container id's conmon (its
// init process), or 0: how a rootless container, which has no cgroup of its
// own under cgroup v1, is found from /proc.
func (h podmanHost) conmonChild(id string) int {
	s := procScan{proc: h.proc}
	pids := s.pids()
	conmons := map[int]bool{}
	for _, pid := range pids {
		if h.isConmonOf(pid, id) {
			conmons[pid] = true
		}
	}
	for _, pid := range pids {
		if len(conmons) > 0 && conmons[s.ppid(pid)] {
			return pid
		}
	}
	return 0
}

// filesystem returns the layers of a container that does not run, topmost
// first, and why it does not run.
func (c podmanContainer) filesystem() *Filesystem {
	return &Filesystem{Layers: c.layers(), State: c.state()}
}

// layers returns the directories of the container's filesystem, topmost
// first: with overlay, its writable layer's diff then the lower layers
// its "lower" file lists (l/SHORT, links to ../LAYER/diff); with vfs, the
// one directory that holds everything.
func (c podmanContainer) layers() []string {
	if c.Layer == "" || strings.ContainsAny(c.Layer, "/.") {
		return nil
	}
	root := filepath.Join(c.store.graphRoot, c.driver)
	if c.driver != "overlay" {
		return []string{filepath.Join(root, "dir", c.Layer)}
	}
	layers := []string{filepath.Join(root, c.Layer, "diff")}
	lower, err := os.ReadFile(filepath.Join(root, c.Layer, "lower"))
	if err != nil {
		return layers
	}
	for _, l := range strings.Split(strings.TrimSpace(string(lower)), ":") {
		if short, ok := strings.CutPrefix(l, "l/"); ok && short != "" && !strings.ContainsAny(short, "/.") {
			if dest, err := os.Readlink(filepath.Join(root, "l", short)); err == nil {
				layers = append(layers, filepath.Clean(filepath.Join(root, "l", dest)))
			}
		}
	}
	return layers
}

// maxEventsTail is how much of the end of libpod's events log state reads.
const maxEventsTail = 4 << 20

// podmanEvent is one line of libpod's events log (events_logger "file").
type podmanEvent struct {
	ID       string `json:"ID"`
	Status   string `json:"Status"`
	Time     string `json:"Time"`
	ExitCode *int   `json:"ContainerExitCode"`
}

// state says why the container does not run, from libpod's events log
// (kept in /run, so until the next boot): its last "died" event ("exited
// with code 3 at TIME"), else a "create" event and no "start" (created,
// never started), else "not running".
func (c podmanContainer) state() string {
	var died *podmanEvent
	created, started := false, false
	for _, line := range eventsTail(filepath.Join(c.store.tmpDir, "events", "events.log"), c.ID) {
		var e podmanEvent
		if json.Unmarshal(line, &e) != nil || e.ID != c.ID {
			continue
		}
		switch e.Status {
		case "died":
			if e.ExitCode != nil {
				died = &e
			}
		case "create":
			created = true
		case "init", "start":
			started = true
		}
	}
	switch {
	case died != nil:
		return fmt.Sprintf("exited with code %d at %s", *died.ExitCode, died.Time)
	case created && !started:
		return "created, never started"
	}
	return "not running"
}

// eventsTail returns the lines of the end of the events log that mention id.
func eventsTail(path, id string) [][]byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	if st, err := f.Stat(); err == nil && st.Size() > maxEventsTail {
		if _, err := f.Seek(st.Size()-maxEventsTail, io.SeekStart); err != nil {
			return nil
		}
	}
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(id)) {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	return out
}

// passwdEntry is a user of /etc/passwd.
type passwdEntry struct {
	name string
	uid  int
	home string
}

type passwdEntries []passwdEntry

func (p passwdEntries) byUID(uid int) passwdEntry {
	for _, u := range p {
		if u.uid == uid {
			return u
		}
	}
	return passwdEntry{}
}

// readPasswd reads the users of a passwd file that have a home directory.
func readPasswd(path string) (passwdEntries, error) {
	b, err := readBounded(path, 16<<20)
	if err != nil {
		return nil, err
	}
	var out passwdEntries
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || strings.HasPrefix(line, "#") {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil || !filepath.IsAbs(f[5]) {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, home: f[5]})
	}
	return out, nil
}

// storageConf returns the graphroot and runroot a containers-storage.conf
// file sets, else graph and run.
func storageConf(path, graph, run string) (string, string) {
	b, err := readBounded(path, 1<<20)
	if err != nil {
		return graph, run
	}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[] ")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "storage" {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		if !filepath.IsAbs(v) {
			continue
		}
		switch strings.TrimSpace(k) {
		case "graphroot":
			graph = v
		case "runroot":
			run = v
		}
	}
	return graph, run
}
