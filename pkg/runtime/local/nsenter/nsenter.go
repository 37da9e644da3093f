// Package nsenter is the part of the local engine that runs instead of the
// Go runtime: a C constructor (nsenter.c) that, in a re-executed ephem,
// mounts the image, joins the target's namespaces and forks the debug
// container's init, which is C too (cinit.c, csuper.c) and never returns.
// Importing this package links the constructor in; main calls IsInit first
// and hands over to Init when it is true.
package nsenter

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter
import "C"

import "os"

// Environment variables the constructor reads; the Go side of the local
// engine sets them when it re-executes ephem.
const (
	// EnvJoin lists "ns:fd" pairs to join, in order (see openTarget.order).
	EnvJoin = "_EPHEM_JOIN"
	// EnvCtl is the control socket's descriptor number.
	EnvCtl = "_EPHEM_CTL"
	// EnvRootfs is the directory a private tmpfs and the overlay go on.
	EnvRootfs = "_EPHEM_ROOTFS"
	// EnvLower lists the image's layer directories, top first, ':'-separated.
	EnvLower = "_EPHEM_LOWER"
	// EnvNewPID asks for a new PID namespace instead of the target's.
	EnvNewPID = "_EPHEM_NEWPID"
	// EnvRootIDs is "uid:gid", the host IDs of the root of the target's
	// user namespace, when it has its own.
	EnvRootIDs = "_EPHEM_ROOT_IDS"
	// EnvUnshare lists namespaces ("net,ipc,uts,cgroup") to create rather
	// than join, for a target that runs nothing; EnvJoin is then empty.
	EnvUnshare = "_EPHEM_UNSHARE"
	// EnvRootless, set when ephem runs without root, makes the constructor
	// join the target's user namespace first and only then create the
	// mount namespace and mount the image (see rootless.go in local).
	EnvRootless = "_EPHEM_ROOTLESS"
	// EnvUserXattr mounts the overlay with "userxattr": the layers were
	// unpacked without root and mark opaque directories with user.* xattrs.
	EnvUserXattr = "_EPHEM_USERXATTR"
	// EnvSockets is "USERFD,NETFD,CTLFD": the process joins the user
	// namespace, then the network namespace (NETFD -1: none), and only
	// makes sockets there on request over CTLFD (see sockets.c).
	EnvSockets = "_EPHEM_SOCKETS"
)

// Error kinds of the error messages the constructor and init send the host;
// nsenter.h defines the same for the C side.
const (
	KindOS          = "os"
	KindInternal    = "internal"
	KindPermission  = "permission"
	KindUnsupported = "unsupported"
	KindUsage       = "usage"
	KindNotFound    = "notfound"
	KindBusy        = "busy"
)

// IsInit reports whether this process was re-executed as a debug
// container's init (or its relay). The constructor never returns into Go
// then: the relay exits with init's status and init, all in C, exits with
// the command's. EnvJoin is set, as the constructor checks, even when empty:
// a target in ephem's own namespaces (a host process) has nothing to join.
func IsInit() bool {
	_, join := os.LookupEnv(EnvJoin)
	return join || os.Getenv(EnvUnshare) != ""
}

// Init ends a process for which IsInit is true and that nonetheless
// reached the Go runtime: it must not run ephem's command line.
func Init() {
	os.Exit(125)
}
