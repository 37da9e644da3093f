// Package nsenter is the part of the local engine that runs before the Go
// runtime: a C constructor (nsenter.c) that, in a re-executed ephem, mounts
// the image, joins the target's namespaces and forks the debug container's
// init. Importing this package links the constructor in; main calls IsInit
// first and hands over to Init when it is true.
package nsenter

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

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
	// EnvDrop is "UID:GID:GROUPS:CAPS:NNP:SETGROUPS": set when init
	// re-executes itself, it makes the constructor drop to the debug
	// container's credentials (see drop_to in nsenter.c) and join nothing.
	EnvDrop = "_EPHEM_DROP"
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

// initFunc is the container init's entry point, registered by the local
// engine so this package does not import it.
var initFunc func()

// Register sets the function Init runs; the local engine calls it from init.
func Register(f func()) { initFunc = f }

// IsInit reports whether this process is a debug container's init, before
// or after it dropped its privileges.
// EnvJoin is set, as the constructor checks, even when empty: a target in
// ephem's own namespaces (a host process) has nothing to join.
func IsInit() bool {
	_, join := os.LookupEnv(EnvJoin)
	return join || os.Getenv(EnvDrop) != "" || os.Getenv(EnvUnshare) != ""
}

// DropSpec formats EnvDrop's value.
func DropSpec(uid, gid int, groups []int, caps uint64, noNewPrivs, setGroups bool) string {
	g := make([]string, len(groups))
	for i, v := range groups {
		g[i] = strconv.Itoa(v)
	}
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return fmt.Sprintf("%d:%d:%s:%x:%s:%s", uid, gid, strings.Join(g, ","), caps, b(noNewPrivs), b(setGroups))
}

// Init runs the registered container init and exits.
func Init() {
	if initFunc == nil {
		os.Exit(125)
	}
	initFunc()
	os.Exit(125)
}
