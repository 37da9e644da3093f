package local

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// The runtime-default seccomp profile of the restricted profile: like the
// default profiles of Docker, containerd and CRI-O, it refuses with EPERM
// the system calls a container has no business making — mounting, changing
// namespaces (unshare, setns, clone with namespace flags), loading kernel
// modules or kexec images, the kernel keyring, BPF and perf, reading or
// writing other processes' memory, io_uring, setting clocks, swap, reboot —
// and answers clone3 with ENOSYS so libc falls back to clone, whose flags
// it can check. Everything else is allowed.

// seccompData offsets (struct seccomp_data).
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] on little-endian machines
)

// namespaceFlags are the clone flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// seccompProgram builds the filter for this architecture.
func seccompProgram() ([]unix.SockFilter, error) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("no seccomp profile for %s", runtime.GOARCH)
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jst = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)&unix.SECCOMP_RET_DATA)
	nosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)&unix.SECCOMP_RET_DATA)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	p := []unix.SockFilter{
		{Code: ld, K: offArch},
		{Code: jeq, K: arch, Jt: 1},
		{Code: ret, K: deny}, // another ABI: refuse
		{Code: ld, K: offNr},
	}
	if runtime.GOARCH == "amd64" {
		// x32 system calls reach the same kernel code by other numbers.
		p = append(p, unix.SockFilter{Code: jge, K: 0x40000000, Jf: 1}, unix.SockFilter{Code: ret, K: deny})
	}
	p = append(p,
		unix.SockFilter{Code: jeq, K: unix.SYS_CLONE3, Jf: 1}, unix.SockFilter{Code: ret, K: nosys},
		unix.SockFilter{Code: jeq, K: unix.SYS_CLONE, Jf: 3},
		unix.SockFilter{Code: ld, K: offArg0},
		unix.SockFilter{Code: jst, K: namespaceFlags, Jt: 0, Jf: 1}, unix.SockFilter{Code: ret, K: deny},
	)
	// After the clone check the accumulator may hold args[0]: reload nr.
	p = append(p, unix.SockFilter{Code: ld, K: offNr})
	for i, nr := range deniedSyscalls {
		// Jump to the final deny when equal: past the remaining checks and
		// the allow.
		p = append(p, unix.SockFilter{Code: jeq, K: uint32(nr), Jt: uint8(len(deniedSyscalls) - i)})
	}
	p = append(p, unix.SockFilter{Code: ret, K: allow}, unix.SockFilter{Code: ret, K: deny})
	if len(deniedSyscalls) > 250 {
		return nil, fmt.Errorf("seccomp: too many syscalls for 8-bit jumps")
	}
	return p, nil
}
