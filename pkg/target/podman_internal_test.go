package target

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakePodman is a host's podman storages and /proc, made up in a
// temporary directory: the rootful storage, and user alice's (uid
// aliceUID) rootless one.
type fakePodman struct {
	t    *testing.T
	dir  string
	host podmanHost
}

const aliceUID = 4242

func newFakePodman(t *testing.T) *fakePodman {
	t.Helper()
	dir := t.TempDir()
	f := &fakePodman{t: t, dir: dir}
	f.host = podmanHost{
		graphRoot: filepath.Join(dir, "var/lib/containers/storage"), runRoot: filepath.Join(dir, "run/containers/storage"),
		tmpDir: filepath.Join(dir, "run/libpod"), passwd: filepath.Join(dir, "passwd"), proc: filepath.Join(dir, "proc"),
		runUser: filepath.Join(dir, "run/user"),
	}
	f.write("passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nalice:x:%d:%d::%s/home/alice:/bin/sh\nbob:x:4343:4343::%s/home/bob:/bin/sh\n",
		aliceUID, aliceUID, dir, dir))
	return f
}

func (f *fakePodman) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// container adds a container to a storage (graph: rootful's, or alice's)
// with an overlay layer on top of one image layer; pid > 0 writes its
// pidfile.
func (f *fakePodman) container(owner, id, name string, pid int) {
	f.t.Helper()
	graph, run := "var/lib/containers/storage", "run/containers/storage"
	if owner == "alice" {
		graph, run = "home/alice/.local/share/containers/storage", "run/user/4242/containers"
	}
	file := filepath.Join(f.dir, graph, "overlay-containers/containers.json")
	var list string
	if b, err := os.ReadFile(file); err == nil {
		list = strings.TrimSuffix(strings.TrimPrefix(string(b), "["), "]") + ","
	}
	layer := "c" + id[1:]
	f.write(filepath.Join(graph, "overlay-containers/containers.json"),
		fmt.Sprintf(`[%s{"id":%q,"names":[%q],"layer":%q,"metadata":"{}"}]`, list, id, name, layer))
	f.write(filepath.Join(graph, "overlay", layer, "lower"), "l/SHORTIMAGE")
	f.write(filepath.Join(graph, "overlay", layer, "diff/upper"), "")
	if err := os.MkdirAll(filepath.Join(f.dir, graph, "overlay/l"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	_ = os.Symlink("../image/diff", filepath.Join(f.dir, graph, "overlay/l/SHORTIMAGE"))
	if pid > 0 {
		f.write(filepath.Join(run, "overlay-containers", id, "userdata/pidfile"), strconv.Itoa(pid))
	}
	if owner == "alice" {
		for _, d := range []string{"home/alice/.local/share/containers/storage", "run/user/4242"} {
			if err := os.Chown(filepath.Join(f.dir, d), aliceUID, aliceUID); err != nil {
				f.t.Skipf("chown (needs root): %v", err)
			}
		}
	}
}

// process adds a process to the fake /proc: its cgroup line, parent and
// uid_map.
func (f *fakePodman) process(pid int, cgroup string, ppid int, uidMap string) {
	f.t.Helper()
	p := filepath.Join("proc", strconv.Itoa(pid))
	f.write(filepath.Join(p, "cgroup"), cgroup+"\n")
	f.write(filepath.Join(p, "status"), fmt.Sprintf("Name:\tx\nPPid:\t%d\n", ppid))
	f.write(filepath.Join(p, "uid_map"), uidMap+"\n")
}

// conmon adds a conmon process watching container id.
func (f *fakePodman) conmon(pid int, id string) {
	f.t.Helper()
	f.write(filepath.Join("proc", strconv.Itoa(pid), "comm"), "conmon\n")
	f.write(filepath.Join("proc", strconv.Itoa(pid), "cmdline"), "/usr/bin/conmon\x00--api-version\x001\x00-c\x00"+id+"\x00-u\x00"+id+"\x00")
	f.write(filepath.Join("proc", strconv.Itoa(pid), "status"), "PPid:\t1\n")
}

func (f *fakePodman) resolve(ref string) (Process, error) {
	f.t.Helper()
	r := Ref{Scheme: SchemePodman, Raw: ref}
	if err := ParsePodman(&r, strings.TrimPrefix(ref, "podman://")); err != nil {
		f.t.Fatalf("parsing %s: %v", ref, err)
	}
	return f.host.resolve(r)
}

var (
	idWeb  = strings.Repeat("ab", 32)
	idDB   = strings.Repeat("de", 32)
	idGone = strings.Repeat("0f", 32)
	idMine = strings.Repeat("5a", 32)
)

func TestParsePodman(t *testing.T) {
	for _, tc := range []struct{ in, user, name, err string }{
		{in: "web", name: "web"},
		{in: "alice/web", user: "alice", name: "web"},
		{in: "root/" + idWeb, user: "root", name: idWeb},
		{in: "", err: "missing container name"},
		{in: "alice/", err: "missing container name"},
		{in: "/web", err: "not a user name"},
		{in: "-x/web", err: "not a user name"},
		{in: "a/b/c", err: "no '/'"},
	} {
		var r Ref
		err := ParsePodman(&r, tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePodman(%q) = %v, want an error saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.Namespace != tc.user || r.Name != tc.name {
			t.Errorf("ParsePodman(%q) = %+v, %v; want user %q name %q", tc.in, r, err, tc.user, tc.name)
		}
	}
}

func TestResolvePodman(t *testing.T) {
	f := newFakePodman(t)
	self := os.Getpid() // alive, so CheckAlive passes
	f.container("root", idWeb, "web", self)
	f.process(self, "0::/libpod_parent/libpod-"+idWeb, 1, "0 0 4294967295")
	f.container("root", idDB, "db", 0)
	f.write("run/libpod/events/events.log", `{"ID":"`+idDB+`","Status":"start","Time":"T0"}
{"ContainerExitCode":3,"ID":"`+idDB+`","Status":"died","Time":"2026-12-02T16:20:01Z"}
`)
	f.write("run/containers/storage/overlay-containers/"+idDB+"/userdata/conmon.pid", "1")
	f.container("root", idGone, "gone", 999999) // a stale pidfile
	f.container("alice", idMine, "web", 0)
	f.write("run/user/4242/libpod/tmp/events/events.log", `{"ID":"`+idMine+`","Status":"create","Time":"T0"}`+"\n")
	f.container("alice", idMine[:60]+"beef", "mine", 424242)
	f.conmon(424241, idMine[:60]+"beef")
	f.process(424242, "0::/", 424241, "0 4242 1\n1 100000 65536")

	for _, tc := range []struct {
		ref, desc string
		pid       int
		stopped   *Filesystem
		err       error
		msg       []string
	}{
		{ref: "podman://root/web", desc: "podman container web", pid: self},
		{ref: "podman://" + idWeb, desc: "podman container web", pid: self},
		{ref: "podman://abab", desc: "podman container web", pid: self},
		{ref: "podman://mine", desc: "podman container mine of user alice", pid: 424242},
		{ref: "podman://alice/web", desc: "podman container web of user alice",
			stopped: &Filesystem{Layers: f.layers("home/alice/.local/share/containers/storage", idMine), State: "created, never started"}},
		{ref: "podman://db", desc: "podman container db",
			stopped: &Filesystem{Layers: f.layers("var/lib/containers/storage", idDB), State: "exited with code 3 at 2026-12-02T16:20:01Z"}},
		{ref: "podman://gone", desc: "podman container gone",
			stopped: &Filesystem{Layers: f.layers("var/lib/containers/storage", idGone), State: "not running"}},
		{ref: "podman://web", err: ErrInvalid, msg: []string{`"podman://web" names 2 podman containers: podman://alice/web, podman://root/web`}},
		{ref: "podman://nope", err: ErrNotFound, msg: []string{`no podman container "nope" in the rootful storage, alice's rootless storage`, "podman ps -a"}},
		{ref: "podman://carol/web", err: ErrNotFound, msg: []string{`no user "carol"`}},
		{ref: "podman://bob/web", err: ErrUnreachable, msg: []string{"no rootless podman storage of user bob", "is podman installed?"}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			p, err := f.resolve(tc.ref)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("resolve = %+v, %v; want %v", p, err, tc.err)
				}
				for _, m := range tc.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not say %q", err, m)
					}
				}
				return
			}
			want := Process{PID: tc.pid, Description: tc.desc, Stopped: tc.stopped}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, p); d != "" {
				t.Errorf("resolve (-want +got):\n%s", d)
			}
		})
	}
}

// layers is what a fake container's Filesystem.Layers are.
func (f *fakePodman) layers(graph, id string) []string {
	root := filepath.Join(f.dir, graph, "overlay")
	return []string{filepath.Join(root, "c"+id[1:], "diff"), filepath.Join(root, "image", "diff")}
}

// TestPodmanNotRoot: a user who is not root sees only its own storage.
func TestPodmanNotRoot(t *testing.T) {
	f := newFakePodman(t)
	f.container("root", idWeb, "web", 0)
	f.container("alice", idMine, "web", 0)
	f.host.uid = aliceUID
	for ref, want := range map[string]string{
		"podman://root/web": "only root may debug the rootful storage (ephem runs as uid 4242)",
		"podman://bob/web":  "only root may debug user bob's rootless containers",
	} {
		if _, err := f.resolve(ref); !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrPermission saying %q", ref, err, want)
		}
	}
	for _, ref := range []string{"podman://web", "podman://alice/web"} {
		p, err := f.resolve(ref)
		if err != nil || p.Description != "podman container web of user alice" {
			t.Errorf("%s = %+v, %v; want alice's container", ref, p, err)
		}
	}
}

// TestPodmanWithoutStorage: with no storage, a full ID is still found
// from /proc (by its libpod-ID cgroup, or as its conmon's child), and
// anything else is ErrUnreachable wrapping ENOENT.
func TestPodmanWithoutStorage(t *testing.T) {
	f := newFakePodman(t)
	self := os.Getpid()
	f.process(self, "0::/machine.slice/libpod-"+idWeb+".scope", 1, "0 0 4294967295")
	p, err := f.resolve("podman://" + idWeb)
	if err != nil || p.PID != self || !p.ViaProc || !strings.Contains(p.Description, ViaProcNote) {
		t.Errorf("by full ID = %+v, %v; want PID %d via /proc", p, err, self)
	}
	_, err = f.resolve("podman://web")
	if !errors.Is(err, ErrUnreachable) || !SocketDown(err) || !strings.Contains(err.Error(), "is podman installed?") {
		t.Errorf("by name = %v, want ErrUnreachable that SocketDown reports", err)
	}
	if _, err := f.resolve("podman://" + idDB); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no process in /proc") {
		t.Errorf("unknown full ID = %v, want ErrUnreachable saying /proc has none either", err)
	}
	f.conmon(4000, idDB)
	f.process(4001, "0::/", 4000, "0 4242 1")
	if got := f.host.conmonChild(idDB); got != 4001 {
		t.Errorf("conmonChild = %d, want 4001", got)
	}
}

// TestPodmanFindName: the bare-NAME search names each container by its
// full reference, and takes ID prefixes of minIDPrefix digits or more.
func TestPodmanFindName(t *testing.T) {
	f := newFakePodman(t)
	f.container("root", idWeb, "web", 0)
	f.container("alice", idMine, "web", 0)
	got, err := f.host.findName(context.Background(), "web")
	want := []candidate{{ref: "podman://alice/web", id: idMine, exact: true}, {ref: "podman://root/web", id: idWeb, exact: true}}
	if err != nil || !cmp.Equal(want, got, cmp.AllowUnexported(candidate{})) {
		t.Errorf("findName(web) = %+v, %v; want %+v", got, err, want)
	}
	if got, err := f.host.findName(context.Background(), "aba"); err != nil || len(got) != 0 {
		t.Errorf("findName(aba) = %+v, %v; want nothing (too short a prefix)", got, err)
	}
	if got, err := f.host.findName(context.Background(), "abab"); err != nil || len(got) != 1 || got[0].exact {
		t.Errorf("findName(abab) = %+v, %v; want web by its ID prefix", got, err)
	}
}

// TestPodmanForeignStorage: a user's storage that is a link to storage
// the user does not own is not read.
func TestPodmanForeignStorage(t *testing.T) {
	f := newFakePodman(t)
	f.container("root", idWeb, "web", 0)
	if err := os.MkdirAll(filepath.Join(f.dir, "home/alice/.local/share/containers"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.host.graphRoot, filepath.Join(f.dir, "home/alice/.local/share/containers/storage")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.resolve("podman://alice/web"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("alice's storage linked to root's: %v, want ErrUnreachable", err)
	}
}

// TestPodmanKeepID: a rootless container run with --userns=keep-id maps
// its user's own ID to itself and root to a subordinate ID; it runs all
// the same. A pidfile naming a process in the host's user namespace, or in
// one that does not map the storage's owner, is not the container's.
func TestPodmanKeepID(t *testing.T) {
	for _, tc := range []struct {
		name, uidMap string
		running      bool
	}{
		{"keep-id", "0 100000 4242\n4242 4242 1\n4243 104242 61294", true},
		{"default", "0 4242 1\n1 100000 65536", true},
		{"host", "0 0 4294967295", false},
		{"another user's", "0 4343 1\n1 165536 65536", false},
		{"bad map", "0 x 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePodman(t)
			self := os.Getpid() // alive, so CheckAlive passes
			id := idMine[:60] + "cafe"
			f.container("alice", id, "kid", self)
			f.conmon(424241, id)
			f.process(self, "0::/", 424241, tc.uidMap)
			p, err := f.resolve("podman://alice/kid")
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Stopped == nil && p.PID == self; got != tc.running {
				t.Errorf("uid_map %q: resolved to %+v, want running %v", tc.uidMap, p, tc.running)
			}
		})
	}
}
