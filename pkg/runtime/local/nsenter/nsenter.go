// Package nsenter is the part of the local engine that runs before the Go
// runtime: a C constructor (nsenter.c) that, in a re-executed ephem, mounts
// the image, joins the target's namespaces and forks the debug container's
// init. Importing this package links the constructor in; main calls IsInit
// first and hands over to Init when it is true.
package nsenter

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter
import "C"

import "os"

// Environment variables the constructor reads; the Go side of the local
// engine sets them when it re-executes ephem.
const (
	// EnvJoin lists "ns:fd" pairs to join, user first.
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
)

// initFunc is the container init's entry point, registered by the local
// engine so this package does not import it.
var initFunc func()

// Register sets the function Init runs; the local engine calls it from init.
func Register(f func()) { initFunc = f }

// IsInit reports whether this process is a debug container's init.
func IsInit() bool { return os.Getenv(EnvJoin) != "" }

// Init runs the registered container init and exits.
func Init() {
	if initFunc == nil {
		os.Exit(125)
	}
	initFunc()
	os.Exit(125)
}
