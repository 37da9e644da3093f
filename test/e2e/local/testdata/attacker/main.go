// Command attacker runs inside a debug container and tries, the way a
// hostile debug command would, to take over every other process it can see
// in the target's PID namespace: it tries to ptrace-attach to each one and
// reports what that process holds (capabilities, descriptors). The local
// e2e suite (attack_test.go) judges the report.
//
// One line a process:
//
//	proc PID COMM attach=ok|ERRNO uid=UID prm=HEX eff=HEX bnd=HEX nnp=N dirfds=N fds=N
//
// and one "self" line with the attacker's own uid, prm, eff and bnd.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

const ptraceSeize = 0x4206

func status(pid string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func uid(s map[string]string) string {
	f := strings.Fields(s["Uid"])
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func main() {
	runtime.LockOSThread()
	self := strconv.Itoa(os.Getpid())
	s := status(self)
	fmt.Printf("self uid=%s prm=%s eff=%s bnd=%s\n", uid(s), s["CapPrm"], s["CapEff"], s["CapBnd"])
	ents, err := os.ReadDir("/proc")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || e.Name() == self {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		st := status(e.Name())
		attach := "ok"
		if _, _, errno := syscall.Syscall6(syscall.SYS_PTRACE, ptraceSeize, uintptr(pid), 0, 0, 0, 0); errno != 0 {
			attach = errno.Error()
			attach = strings.ReplaceAll(attach, " ", "_")
		}
		// Descriptors: what /proc/PID/fd gives away (ptrace read access).
		dirs, n := 0, 0
		fds, _ := os.ReadDir("/proc/" + e.Name() + "/fd")
		for _, fd := range fds {
			n++
			if fi, err := os.Stat("/proc/" + e.Name() + "/fd/" + fd.Name()); err == nil && fi.IsDir() {
				dirs++
			}
		}
		fmt.Printf("proc %d %s attach=%s uid=%s prm=%s eff=%s bnd=%s nnp=%s dirfds=%d fds=%d\n", pid,
			strings.TrimSpace(string(comm)), attach, uid(st), st["CapPrm"], st["CapEff"], st["CapBnd"], st["NoNewPrivs"], dirs, n)
	}
}
