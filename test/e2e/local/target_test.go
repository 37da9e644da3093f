package local_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// target is a workload process in its own namespaces.
type target struct {
	pid int
	cmd *exec.Cmd
}

func (t *target) ref() string { return "pid:" + strconv.Itoa(t.pid) }

// targetOptions shape a local target.
type targetOptions struct {
	port     int
	userns   bool // its own user namespace, root mapped to host UID 100000
	hostname string
}

// startTarget runs the distroless HTTP server as PID 1 of its own PID, net,
// IPC, UTS and mount namespaces (and user namespace if asked), chrooted into
// the image's root, where there is no shell. It waits until the server
// answers on the target's own loopback.
func startTarget(t *testing.T, f *fixture, o targetOptions) *target {
	t.Helper()
	if o.port == 0 {
		o.port = 80
	}
	if o.hostname == "" {
		o.hostname = "target"
	}
	script := fmt.Sprintf("ip link set lo up && hostname %s && exec chroot %s /server -addr 127.0.0.1:%d", o.hostname, f.rootfs, o.port)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if o.userns {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
		attr.GidMappingsEnableSetgroups = true
		// Host UID 0 is unmapped inside: become the namespace's root.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the target: %v", err)
	}
	tg := &target{pid: cmd.Process.Pid, cmd: cmd}
	t.Cleanup(tg.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("nsenter", "-t", strconv.Itoa(tg.pid), "-n", "busybox", "wget", "-qO-",
			fmt.Sprintf("http://127.0.0.1:%d/", o.port)).CombinedOutput()
		if err == nil && strings.Contains(string(out), "OK") {
			return tg
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target did not answer on its loopback: %v: %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (t *target) stop() {
	_ = t.cmd.Process.Kill()
	_, _ = t.cmd.Process.Wait()
}

// nsLinks returns the namespace links ("net:[4026532253]") of a process.
func nsLinks(t *testing.T, pid string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"} {
		l, err := os.Readlink("/proc/" + pid + "/ns/" + ns)
		if err != nil {
			t.Fatalf("reading %s namespace of %s: %v", ns, pid, err)
		}
		out[ns] = l
	}
	return out
}

// parseNS parses "ls -l /proc/self/ns" output from inside the container.
func parseNS(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[len(f)-2] == "->" {
			m[f[len(f)-3]] = f[len(f)-1]
		}
	}
	return m
}
