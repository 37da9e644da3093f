package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
)

// TestRootlessVerbs: without root, the user's ns, cp, port-forward and
// capture work on a target in a user namespace the user owns (the same
// rootless target as TestRootlessDebug's), through sockets a short-lived
// helper makes in the target's namespaces; nothing is left running.
func TestRootlessVerbs(t *testing.T) {
	r := setupRootless(t)
	tg := r.startTarget(t)
	ref := "pid:" + strconv.Itoa(tg.pid)

	t.Run("NS", func(t *testing.T) {
		code, out, stderr := r.run(t, r.bin, "ns", ref, "-o", "json")
		if code != 0 {
			t.Fatalf("ephem ns: exit %d: %s", code, stderr)
		}
		var rep struct {
			PID        int    `json:"pid"`
			HostFrom   string `json:"hostFrom"`
			Namespaces []struct {
				Type, Host, Target string
			} `json:"namespaces"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("ephem ns -o json: %v\n%s", err, out)
		}
		if rep.PID != tg.pid || rep.HostFrom != "ephem" || len(rep.Namespaces) < 7 {
			t.Errorf("report pid %d, hostFrom %q, %d namespaces; want %d, ephem (PID 1 is unreadable), 7 or more",
				rep.PID, rep.HostFrom, len(rep.Namespaces), tg.pid)
		}
		for _, n := range rep.Namespaces {
			if want := nsLink(t, tg.pid, n.Type); n.Target != want {
				t.Errorf("%s: target %s, want %s", n.Type, n.Target, want)
			}
			if want := nsLink(t, os.Getpid(), n.Type); n.Host != want {
				t.Errorf("%s: host %s, want %s", n.Type, n.Host, want)
			}
		}
	})

	t.Run("Cp", func(t *testing.T) {
		// Out: a file only the target's mount namespace has.
		out := filepath.Join(r.dir, "page.out")
		if code, _, stderr := r.run(t, r.bin, "cp", ref+":"+tg.page, out); code != 0 {
			t.Fatalf("ephem cp out: exit %d: %s", code, stderr)
		}
		if b, err := os.ReadFile(out); err != nil || string(b) != "rootless-page\n" {
			t.Errorf("copied out %q, %v; want the target's page", b, err)
		}
		// In: a directory of the user's, into the target's tmpfs.
		src := filepath.Join(r.dir, "src")
		r.mustRunAs(t, "sh", "-c", "mkdir -p "+src+"/sub && echo one > "+src+"/a && echo two > "+src+"/sub/b")
		dst := filepath.Dir(tg.page) + "/copied"
		if code, _, stderr := r.run(t, r.bin, "cp", src, ref+":"+dst); code != 0 {
			t.Fatalf("ephem cp in: exit %d: %s", code, stderr)
		}
		inTarget := fmt.Sprintf("/proc/%d/root%s", tg.pid, dst)
		for name, want := range map[string]string{"a": "one\n", "sub/b": "two\n"} {
			p := filepath.Join(inTarget, name)
			b, err := os.ReadFile(p)
			if err != nil || string(b) != want {
				t.Errorf("%s in the target: %q, %v; want %q", name, b, err, want)
				continue
			}
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil || int(st.Uid) != r.uid || int(st.Gid) != r.gid {
				t.Errorf("%s in the target is owned by %d:%d (%v), want the user's %d:%d (the target's root)", name, st.Uid, st.Gid, err, r.uid, r.gid)
			}
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(tg.page), "copied")); err == nil {
			t.Errorf("the copy landed in the host's mount namespace too")
		}
		// And the directory back out.
		back := filepath.Join(r.dir, "back")
		if code, _, stderr := r.run(t, r.bin, "cp", ref+":"+dst, back); code != 0 {
			t.Fatalf("ephem cp dir out: exit %d: %s", code, stderr)
		}
		if b, err := os.ReadFile(filepath.Join(back, "sub/b")); err != nil || string(b) != "two\n" {
			t.Errorf("directory copied back: sub/b %q, %v", b, err)
		}
	})

	t.Run("CpSymlinkStaysInRoot", func(t *testing.T) {
		// A target with a root of its own (chroot), where the user plants
		// an absolute link to a host directory the user may write.
		root := filepath.Join(r.dir, "jail")
		host := filepath.Join(r.dir, "hostside")
		r.mustRunAs(t, "sh", "-c", fmt.Sprintf("mkdir -p %[1]s/bin %[2]s && cp /usr/bin/busybox %[1]s/bin/ && echo secret > %[2]s/secret && ln -s %[2]s %[1]s/link", root, host))
		jail := r.asUser(context.Background(), "unshare", "--user", "--map-root-user", "--root="+root, "/bin/busybox", "sleep", "600")
		if err := jail.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = jail.Process.Kill(); _, _ = jail.Process.Wait() })
		pid := 0
		waitFor(t, 10*time.Second, "the jailed target", func() bool {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", jail.Process.Pid))
			if strings.HasPrefix(string(b), "/bin/busybox\x00sleep") {
				pid = jail.Process.Pid
			}
			return pid != 0
		})
		jref := "pid:" + strconv.Itoa(pid)
		code, _, stderr := r.run(t, r.bin, "cp", jref+":/link/secret", filepath.Join(r.dir, "leak"))
		if code != 66 {
			t.Errorf("cp out through the planted link: exit %d (%s), want 66", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(r.dir, "leak")); err == nil {
			t.Errorf("cp out followed the planted link to the host")
		}
		code, _, stderr = r.run(t, r.bin, "cp", filepath.Join(r.dir, "page.out"), jref+":/link/escaped")
		if code != 66 {
			t.Errorf("cp in through the planted link: exit %d (%s), want 66", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(host, "escaped")); err == nil {
			t.Errorf("cp in wrote through the planted link onto the host")
		}
	})

	t.Run("CpArchiveOwners", func(t *testing.T) {
		// A target mapping root to the user and 1... to its subordinate IDs:
		// -a may not give a file one of those, which only root can.
		auto := r.asUser(context.Background(), "unshare", "--map-root-user", "--map-auto", "sleep", "600")
		if err := auto.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = auto.Process.Kill(); _, _ = auto.Process.Wait() })
		aref := "pid:" + strconv.Itoa(auto.Process.Pid)
		waitFor(t, 10*time.Second, "the --map-auto target", func() bool {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", auto.Process.Pid))
			return strings.Count(string(b), "\n") == 2
		})
		src := filepath.Join(r.dir, "owned1000")
		if err := os.WriteFile(src, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(src, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := r.run(t, r.bin, "cp", "-a", src, aref+":"+filepath.Join(r.dir, "kept"))
		if code != 77 || !strings.Contains(stderr, "-a keeps the owner 1000:1000") {
			t.Errorf("cp -a of a file of uid 1000: exit %d, %q; want 77 naming the owner", code, stderr)
		}
		if _, err := os.Lstat(filepath.Join(r.dir, "kept")); err == nil {
			t.Errorf("a refused cp -a left the file")
		}
		if code, _, stderr := r.run(t, r.bin, "cp", src, aref+":"+filepath.Join(r.dir, "mine")); code != 0 {
			t.Errorf("cp without -a: exit %d: %s", code, stderr)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(r.dir, "mine"), &st); err != nil || int(st.Uid) != r.uid {
			t.Errorf("cp without -a: owner %d (%v), want the user's %d", st.Uid, err, r.uid)
		}
	})

	t.Run("PortForward", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := r.asUser(ctx, r.bin, "port-forward", ref, "0:8080")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		sc := bufio.NewScanner(stderr)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "forwarding ") {
			t.Fatalf("ephem port-forward printed %q, want its forwarding line", sc.Text())
		}
		addr := strings.Fields(sc.Text())[1]
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		client := &http.Client{Timeout: 10 * time.Second}
		for i := range 3 { // a connection each, through one helper
			resp, err := client.Get("http://" + addr + "/")
			if err != nil {
				t.Fatalf("GET %d through the forward: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), "rootless-page") {
				t.Errorf("GET %d through the forward: %q, want the target's page", i, b)
			}
		}
		if len(helpers(t)) != 1 {
			t.Errorf("want one socket helper while forwarding, have %v", helpers(t))
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("ephem port-forward after SIGTERM: %v", err)
		}
		waitFor(t, 5*time.Second, "the socket helper to end", func() bool { return len(helpers(t)) == 0 })
	})

	t.Run("Capture", func(t *testing.T) {
		pcap := filepath.Join(r.dir, "cap.pcap")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := r.asUser(ctx, "sh", "-c", r.bin+" capture "+ref+" -c 3 tcp port 8080 > "+pcap)
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for {
			_ = exec.Command("nsenter", "-t", strconv.Itoa(tg.pid), "-n", "busybox", "wget", "-qO-", "http://127.0.0.1:8080/").Run()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ephem capture -c 3: %v: %s", err, errb.String())
				}
				out, err := exec.Command("tcpdump", "-n", "-r", pcap).CombinedOutput()
				if err != nil {
					t.Fatalf("tcpdump -r: %v\n%s", err, out)
				}
				if n := strings.Count(string(out), ".8080"); n < 3 {
					t.Errorf("tcpdump -r shows %d packets of port 8080, want 3:\n%s", n, out)
				}
				if len(helpers(t)) != 0 {
					t.Errorf("socket helpers left after the capture: %v", helpers(t))
				}
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})

	t.Run("NotOwned", func(t *testing.T) {
		other := exec.Command("unshare", "--user", "--map-root-user", "--net", "sleep", "60")
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = other.Process.Kill(); _, _ = other.Process.Wait() })
		for _, pid := range []int{1, other.Process.Pid} {
			ref := "pid:" + strconv.Itoa(pid)
			for _, args := range [][]string{
				{"ns", ref}, {"cp", ref + ":/etc/hostname", filepath.Join(r.dir, "no")},
				{"cp", filepath.Join(r.dir, "page.out"), ref + ":/tmp/no"},
				{"port-forward", ref, "0:80"}, {"capture", ref, "-c", "1"},
			} {
				code, _, stderr := r.run(t, append([]string{r.bin}, args...)...)
				want := fmt.Sprintf("needs root: pid:%d runs as uid 0 in a user namespace you do not own", pid)
				if code != 77 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
					t.Errorf("%v as %s: exit %d, stderr %q; want 77 and one line saying %q", args, rlUser, code, stderr, want)
				}
			}
		}
	})
}

// mustRunAs runs args as the rootless user and fails t unless it exits 0.
func (r *rlFixture) mustRunAs(t *testing.T, args ...string) {
	t.Helper()
	if code, out, stderr := r.run(t, args...); code != 0 {
		t.Fatalf("%v as %s: exit %d: %s%s", args, rlUser, code, out, stderr)
	}
}

// helpers returns the PIDs of running socket helpers.
func helpers(t *testing.T) []string {
	t.Helper()
	out, _ := exec.Command("pgrep", "-x", "ephem-sockets").Output()
	return strings.Fields(string(out))
}

// TestPodmanKeepID: a rootless podman container run with --userns=keep-id
// (its user's ID mapped to itself, root to a subordinate ID) is found
// running by its name, as root, like pid: of its process.
func TestPodmanKeepID(t *testing.T) {
	f := setup(t)
	p := e2eutil.RootlessPodman(t)
	image := e2eutil.PushImage(t, f.registry, "ephem/distroless", f.images["distroless"])
	p.Pull(t, image)
	name := "pm-keepid-" + randomID(t)[:8]
	t.Cleanup(func() { p.Remove(t, name) })
	p.Run(t, append(append([]string{"run", "-d", "--name", name, "--network", "none", "--userns=keep-id"}, e2eutil.PodmanLimits...),
		image, "-addr", "127.0.0.1:8080")...)
	pid := p.PID(t, name)
	if pid == 0 {
		t.Fatalf("podman says %s does not run", name)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if fl := strings.Fields(string(b)); len(fl) < 3 || fl[0] != "0" || fl[1] == strconv.Itoa(p.UID) {
		t.Fatalf("uid_map of a keep-id container: %q, want root mapped to a subordinate ID", b)
	}
	ref := "podman://" + e2eutil.PodmanTestUser + "/" + name
	res := f.ephem(t, "ns", ref, "-o", "json")
	if res.ExitCode != 0 {
		t.Fatalf("ephem ns %s: exit %d: %s", ref, res.ExitCode, res.Stderr)
	}
	var rep struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil || rep.PID != pid {
		t.Errorf("ephem ns %s: pid %d (%v), want the container's %d", ref, rep.PID, err, pid)
	}
	res = f.ephem(t, "debug", ref, "-q", "--image", f.busybox, "--", "sh", "-c", "cat /proc/1/uid_map; wget -qO- 127.0.0.1:8080")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "OK - GET") {
		t.Errorf("ephem debug %s: exit %d, stdout %q, stderr %s; want the container's server", ref, res.ExitCode, res.Stdout, res.Stderr)
	}
}
