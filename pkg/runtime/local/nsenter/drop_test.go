package nsenter

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain reports the credentials the constructor left when the test
// binary was re-executed with EnvDrop (see TestDrop).
func TestMain(m *testing.M) {
	if os.Getenv(EnvDrop) != "" {
		reportCredentials()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func reportCredentials() {
	groups, _ := unix.Getgroups()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	_ = unix.Capget(&hdr, &data[0])
	var bnd uint64
	for c := 0; c < 64; c++ {
		if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && in == 1 {
			bnd |= 1 << uint(c)
		}
	}
	dumpable, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	amb := 0
	for c := 0; c < 41; c++ {
		if in, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0); err == nil && in == 1 {
			amb++
		}
	}
	cwd, _ := os.Getwd()
	_, err := os.Stat("/marker")
	fmt.Printf("uid=%d gid=%d groups=%v prm=%x eff=%x inh=%x bnd=%x amb=%d dumpable=%d nnp=%d cwd=%s marker=%v\n",
		os.Getuid(), os.Getgid(), groups,
		uint64(data[1].Permitted)<<32|uint64(data[0].Permitted), uint64(data[1].Effective)<<32|uint64(data[0].Effective),
		uint64(data[1].Inheritable)<<32|uint64(data[0].Inheritable), bnd, amb, dumpable, nnp, cwd, err == nil)
}

// dropChild runs the test binary with EnvDrop=spec in a private mount
// namespace whose working directory is a fresh tmpfs holding /marker, as
// init's root would be.
func dropChild(t *testing.T, spec string) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (run as root in CI: hack/test.sh)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e; d=$(mktemp -d); mount -t tmpfs tmpfs "$d"; touch "$d/marker"; cd "$d"; exec "$0"`
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, child := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "child")
	defer host.Close()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, self)
	cmd.Env = append(os.Environ(), EnvDrop+"="+spec, EnvCtl+"=3")
	cmd.ExtraFiles = []*os.File{child}
	out, err := cmd.CombinedOutput()
	child.Close()
	// What the constructor reported on the control socket, if anything.
	buf := make([]byte, 4096)
	if n, _, _ := unix.Recvfrom(int(host.Fd()), buf, unix.MSG_DONTWAIT); n > 0 {
		out = append(out, buf[:n]...)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), code
}

// TestDrop checks the constructor's drop_to: after it, the process is in
// the new root and holds exactly the container's credentials.
func TestDrop(t *testing.T) {
	kill := uint64(1) << unix.CAP_KILL
	general := kill | 1<<unix.CAP_SYS_PTRACE | 1<<unix.CAP_CHOWN
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"root keeps the container's set", DropSpec(0, 0, nil, general, true, true),
			fmt.Sprintf("uid=0 gid=0 groups=[] prm=%x eff=%x inh=0 bnd=%x amb=0 dumpable=0 nnp=1 cwd=/ marker=true", general, general, general)},
		{"a user keeps only KILL", DropSpec(1000, 1001, []int{5, 6}, general, false, true),
			fmt.Sprintf("uid=1000 gid=1001 groups=[5 6] prm=%x eff=%x inh=0 bnd=%x amb=0 dumpable=0 nnp=0 cwd=/ marker=true", kill, kill, general)},
		{"no KILL, nothing", DropSpec(65534, 65534, nil, 0, true, true),
			"uid=65534 gid=65534 groups=[] prm=0 eff=0 inh=0 bnd=0 amb=0 dumpable=0 nnp=1 cwd=/ marker=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := dropChild(t, tc.spec)
			if code != 0 || out != tc.want {
				t.Errorf("drop %s: exit %d\n got: %s\nwant: %s", tc.spec, code, out, tc.want)
			}
		})
	}
}

// TestDropRejects checks that malformed specs are refused (exit 125 with an
// internal error on the control socket, here standard error), not read
// loosely.
func TestDropRejects(t *testing.T) {
	for _, spec := range []string{"", "x", "1000", "1000:1000", "1000:1000::20:1", "1000:1000::20:1:1:9",
		"-1:0::0:0:0", "1000x:0::0:0:0", "0:0:5,,6:0:0:0", "0:0::zz:0:0", "0:0::0:2:0", "4294967295:0::0:0:0",
		"99999999999999999999:0::0:0:0"} {
		out, code := dropChild(t, spec)
		if code != 125 || !strings.Contains(out, `"kind":"internal"`) {
			t.Errorf("spec %q: exit %d %q, want 125 with an internal error", spec, code, out)
		}
	}
}
