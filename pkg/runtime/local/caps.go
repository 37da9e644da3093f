package local

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ephem-dev/ephem/pkg/spec"
)

// capNumbers maps capability names (without CAP_) to their numbers.
var capNumbers = map[string]int{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
	"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
	"NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
	"SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
	"SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
	"SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
	"SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
	"BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

// defaultCaps is the capability set container runtimes (containerd, Docker,
// CRI-O) give a container unless told otherwise.
var defaultCaps = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

// capabilities returns the capability numbers a container with security
// context s keeps, in the runtime's default-then-adjust way.
func capabilities(s spec.Security) ([]int, error) {
	last := lastCap()
	set := map[int]bool{}
	if s.Privileged {
		for c := 0; c <= last; c++ {
			set[c] = true
		}
		return keys(set), nil
	}
	for _, n := range defaultCaps {
		set[capNumbers[n]] = true
	}
	for _, n := range s.DropCapabilities {
		if strings.EqualFold(n, "ALL") {
			set = map[int]bool{}
			continue
		}
		c, err := capNumber(n)
		if err != nil {
			return nil, err
		}
		delete(set, c)
	}
	for _, n := range s.AddCapabilities {
		if strings.EqualFold(n, "ALL") {
			for c := 0; c <= last; c++ {
				set[c] = true
			}
			continue
		}
		c, err := capNumber(n)
		if err != nil {
			return nil, err
		}
		set[c] = true
	}
	return keys(set), nil
}

func capNumber(name string) (int, error) {
	n, ok := capNumbers[strings.TrimPrefix(strings.ToUpper(name), "CAP_")]
	if !ok {
		return 0, fmt.Errorf("unknown capability %q: use names like NET_ADMIN or SYS_PTRACE", name)
	}
	return n, nil
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// lastCap is the highest capability the running kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return n
}
