package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// loadResult counts the host's requests to the target.
type loadResult struct{ ok, failed int }

// load requests the target's server from a thread in its network namespace.
type load struct {
	stopc chan struct{}
	done  chan loadResult
}

func startLoad(ctx context.Context, pid int) *load {
	l := &load{stopc: make(chan struct{}), done: make(chan loadResult, 1)}
	go l.loop(ctx, pid)
	return l
}

func (l *load) stop() loadResult {
	close(l.stopc)
	return <-l.done
}

func (l *load) loop(ctx context.Context, pid int) {
	var res loadResult
	defer func() { l.done <- res }()
	// The thread joins the target's network namespace and is never given
	// back to the Go scheduler (LockOSThread without Unlock ends it when
	// the goroutine does), so sockets made here are the target's.
	runtime.LockOSThread()
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		res.failed++
		return
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		res.failed++
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-l.stopc:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if get() {
			res.ok++
		} else {
			res.failed++
		}
	}
}

// get requests the target's page. The socket is made on this goroutine's
// thread, in the target's network namespace (http.Transport would dial on
// another goroutine, in the host's).
func get() bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:80", 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == http.StatusOK && string(body) == "soak\n"
}

// leftovers lists what the sessions left once every session is over:
// mounts of the caches, ephem processes, temporary entries, session
// records. Killed sessions end asynchronously: wait for them, bounded.
func (env *soakEnv) leftovers(ctx context.Context) []string {
	var out []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = env.scan()
		if len(out) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out
}

func (env *soakEnv) scan() []string {
	var out []string
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, env.work) {
				out = append(out, "mount "+strings.Fields(line)[4])
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(cmd, "ephem-init") || strings.HasPrefix(cmd, "ephem-relay") || strings.HasPrefix(cmd, "sleep 30 ") ||
			strings.HasPrefix(cmd, env.ephem+" ") {
			out = append(out, "process "+filepath.Base(filepath.Dir(p))+" "+strings.TrimSpace(cmd))
		}
	}
	// Temporary entries a killed pull left are what ephem gc removes.
	_ = exec.Command(env.ephem, "--cache-dir", env.warmCache, "gc").Run()
	if tmp, _ := os.ReadDir(filepath.Join(env.warmCache, "tmp")); len(tmp) > 0 {
		out = append(out, strconv.Itoa(len(tmp))+" temporary entries after gc")
	}
	if recs, _ := filepath.Glob("/run/ephem/sessions/*"); len(recs) > 0 {
		out = append(out, strconv.Itoa(len(recs))+" session records")
	}
	return out
}
