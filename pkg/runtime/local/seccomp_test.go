package local

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// childEnv makes this test binary the seccomp child (see TestMain).
const childEnv = "EPHEM_SECCOMP_CHILD"

// TestSeccompFilter runs this test binary again with the filter loaded and
// checks what it refuses and what it allows.
func TestSeccompFilter(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"unshare: EPERM", "mount: EPERM", "setns: EPERM", "keyctl: EPERM",
		"clone3: ENOSYS", "clone-newns: EPERM", "getpid: ok", "fork: ok", "Seccomp:\t2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		runSeccompChild()
	}
	os.Exit(m.Run())
}

func runSeccompChild() {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		println("nnp:", err.Error())
		os.Exit(1)
	}
	if err := installSeccomp(); err != nil {
		println("install:", err.Error())
		os.Exit(1)
	}
	report := func(name string, err error) {
		var errno unix.Errno
		switch {
		case err == nil:
			println(name + ": ok")
		case errors.As(err, &errno):
			println(name+":", unix.ErrnoName(errno))
		default:
			println(name+":", err.Error())
		}
	}
	report("unshare", unix.Unshare(unix.CLONE_NEWUTS))
	report("mount", unix.Mount("none", "/tmp", "tmpfs", 0, ""))
	report("setns", unix.Setns(0, 0))
	_, _, e := unix.RawSyscall(unix.SYS_KEYCTL, 0, 0, 0)
	report("keyctl", errnoErr(e))
	_, _, e = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	report("clone3", errnoErr(e))
	_, _, e = unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWNS|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	report("clone-newns", errnoErr(e))
	report("getpid", nil)
	// An ordinary fork and exec still work (from the filtered thread).
	out, err := exec.Command("/bin/sh", "-c", "grep Seccomp: /proc/self/status").Output()
	report("fork", err)
	println(strings.TrimSpace(string(out)))
	os.Exit(0)
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// installSeccomp loads the filter into the calling thread, as init loads
// the encoded program into the command before exec.
func installSeccomp() error {
	p, err := seccompProgram()
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0) //nolint:gosec // G103: prctl takes a pointer
}
