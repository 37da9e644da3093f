package local_test

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// imageWithFiles pushes the busybox test image plus one layer holding
// files (path → content, mode 0644, parents made) as name.
func imageWithFiles(t *testing.T, f *fixture, name string, files map[string]string) string {
	t.Helper()
	var es []tarEntry
	dirs := map[string]bool{}
	for p, data := range files {
		for d := p; strings.Contains(d, "/"); {
			d = d[:strings.LastIndex(d, "/")]
			if !dirs[d] {
				dirs[d] = true
				es = append(es, tarEntry{hdr: &tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}})
			}
		}
		es = append(es, tarEntry{&tar.Header{Name: p, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}, []byte(data)})
	}
	return imageWithEntries(t, f, name, es)
}

// tarEntry is one entry of a layer: its header and, for a file, content.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// imageWithEntries pushes the busybox test image plus one layer of entries
// as name.
func imageWithEntries(t *testing.T, f *fixture, name string, entries []tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		e.hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(f.images["busybox"], layer)
	if err != nil {
		t.Fatal(err)
	}
	return e2eutil.PushImage(t, f.registry, name, img)
}

// TestInitUserFromImage: the container's init (C, cinit.c) resolves --user
// in the image's /etc/passwd and /etc/group, as runc does: a name's UID,
// primary group and home; the groups that list it as supplementary ones;
// an explicit group replaces both. A name only the host knows is an error,
// not the host's user.
func TestInitUserFromImage(t *testing.T) {
	f := setup(t)
	img := imageWithFiles(t, f, "ephem/users", map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n# a comment\ntool:x:4242:4343:Tool:/home/tool:/bin/sh\n",
		"etc/group":  "root:x:0:\nstaff:x:4343:\nextra:x:4444:root,tool\nother:x:4545:someone\n",
	})
	tg := startTarget(t, f, targetOptions{})
	run := func(args ...string) e2eutil.Result {
		return f.ephem(t, append([]string{"debug", tg.ref(), "-q", "--image", img}, args...)...)
	}
	for _, tc := range []struct {
		user, want string
	}{
		{"tool", "4242 4343 4343 4444 /home/tool"},
		{"tool:extra", "4242 4444 4444 /home/tool"},
		{"tool:4600", "4242 4600 4600 /home/tool"},
		{"4242", "4242 4343 4343 4444 /home/tool"},
		{"5000", "5000 0 0 /"},
		{"", "0 0 0 4444 /root"},
	} {
		args := []string{"--", "sh", "-c", `echo $(id -u) $(id -g) $(id -G) $HOME`}
		if tc.user != "" {
			args = append([]string{"--user", tc.user}, args...)
		}
		r := run(args...)
		if got := strings.TrimSpace(r.Stdout); r.ExitCode != 0 || got != tc.want {
			t.Errorf("--user %q: exit %d, %q, want %q (stderr %q)", tc.user, r.ExitCode, got, tc.want, r.Stderr)
		}
	}
	// daemon exists on the host (Debian's base-passwd), not in the image.
	for user, want := range map[string]string{"daemon": "unable to find user daemon", "tool:nogroup": "unable to find group nogroup"} {
		r := run("--user", user, "--", "true")
		if r.ExitCode != 64 || !strings.Contains(r.Stderr, want) {
			t.Errorf("--user %s: exit %d %q, want 64 naming %q", user, r.ExitCode, r.Stderr, want)
		}
	}
}

// TestInitCredentials reads the container's init (the command's parent,
// in the target's PID namespace) from inside: it holds the command's user and groups,
// no capability beyond the command's bounding set (as a user, KILL at
// most), no_new_privs and the seccomp filter as the command (restricted
// has one), and it is not dumpable (its environ
// is unreadable to a user without SYS_PTRACE).
func TestInitCredentials(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	script := `cat /proc/$PPID/status; echo ---; cat /proc/self/status; echo ---; cat /proc/$PPID/environ >/dev/null 2>&1 && echo environ-readable; env`
	for _, tc := range []struct {
		name string
		args []string
		uid  string
	}{
		{"root", []string{"--profile", "general"}, "0"},
		{"user", []string{"--profile", "general", "--user", "1000:1001"}, "1000"},
		{"restricted", []string{"--profile", "restricted", "--user", "65534"}, "65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"debug", tg.ref(), "-q", "--image", f.busybox}, tc.args...)
			r := f.ephem(t, append(args, "--", "sh", "-c", script)...)
			parts := strings.SplitN(r.Stdout, "---\n", 3)
			if r.ExitCode != 0 || len(parts) != 3 {
				t.Fatalf("exit %d: %q %q", r.ExitCode, r.Stdout, r.Stderr)
			}
			init, self, rest := status(parts[0]), status(parts[1]), parts[2]
			if init["Name"] != "ephem-init" {
				t.Fatalf("the command's parent is %q, want ephem-init", init["Name"])
			}
			for _, k := range []string{"Uid", "Gid", "Groups", "NoNewPrivs", "CapBnd", "CapInh", "CapAmb", "Seccomp", "Seccomp_filters"} {
				if init[k] != self[k] {
					t.Errorf("init's %s is %q, the command's %q", k, init[k], self[k])
				}
			}
			if tc.name == "restricted" && init["Seccomp"] != "2" {
				t.Errorf("init's Seccomp is %q under restricted, want 2 (filter)", init["Seccomp"])
			}
			if f := strings.Fields(init["Uid"]); len(f) != 4 || f[0] != tc.uid || f[3] != tc.uid {
				t.Errorf("init's Uid %q, want %s", init["Uid"], tc.uid)
			}
			for _, k := range []string{"CapPrm", "CapEff"} {
				if !subset(init[k], self["CapBnd"]) {
					t.Errorf("init's %s %s is beyond the bounding set %s", k, init[k], self["CapBnd"])
				}
				if tc.uid != "0" && !subset(init[k], "0000000000000020") {
					t.Errorf("init of a user holds %s %s, more than KILL", k, init[k])
				}
			}
			// root of the general profile holds SYS_PTRACE and may read it.
			if tc.uid != "0" && strings.Contains(rest, "environ-readable") {
				t.Errorf("the container read init's /proc/1/environ (init is dumpable)")
			}
			for _, want := range []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=", "HOME=/"} {
				if !strings.Contains(rest, want) {
					t.Errorf("the command's environment lacks %q:\n%s", want, rest)
				}
			}
			if strings.Contains(rest, "_EPHEM_") || strings.Contains(rest, "TERM=") {
				t.Errorf("the command's environment has ephem's variables or TERM without a terminal:\n%s", rest)
			}
		})
	}
}

// TestInitHostileUserDatabases: an image whose /etc/passwd is a FIFO (an
// open that never returns), whose /etc/group leads to /dev/zero (a read
// that never ends) and whose /etc/hosts is a FIFO (ephem writes the
// target's there: an open that never returns) cannot hold init: the databases are read only as regular files
// and replaced files are unlinked first. The session runs, as the image's
// default user (root). (The command must not read them either: busybox's
// id would block on the FIFO, the image's own doing.)
func TestInitHostileUserDatabases(t *testing.T) {
	f := setup(t)
	img := imageWithEntries(t, f, "ephem/hostile-users", []tarEntry{
		{hdr: &tar.Header{Name: "etc/", Mode: 0o755, Typeflag: tar.TypeDir}},
		{hdr: &tar.Header{Name: "etc/passwd", Mode: 0o644, Typeflag: tar.TypeFifo}},
		{hdr: &tar.Header{Name: "etc/group", Linkname: "/dev/zero", Typeflag: tar.TypeSymlink}},
		{hdr: &tar.Header{Name: "etc/hosts", Mode: 0o644, Typeflag: tar.TypeFifo}},
	})
	tg := startTarget(t, f, targetOptions{})
	start := time.Now()
	r := f.ephem(t, "debug", tg.ref(), "-q", "--image", img, "--", "sh", "-c", "grep ^Uid: /proc/self/status; test -f /etc/hosts && echo hosts-file")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "Uid:\t0\t") || !strings.Contains(r.Stdout, "hosts-file") {
		t.Fatalf("exit %d after %v: %q %q", r.ExitCode, time.Since(start), r.Stdout, r.Stderr)
	}
	if r := f.ephem(t, "debug", tg.ref(), "-q", "--image", img, "--user", "tool", "--", "true"); r.ExitCode != 64 {
		t.Errorf("--user tool with a FIFO for /etc/passwd: exit %d %q, want 64", r.ExitCode, r.Stderr)
	}
}
