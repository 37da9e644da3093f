// nsenter.h: the error kinds the constructor and the container's init send
// the host in an error message. nsenter.go holds the same names as Go
// constants (Kind*); kinds_test.go checks that the two agree.
#ifndef EPHEM_NSENTER_H
#define EPHEM_NSENTER_H

#define KIND_OS "os"                   // a system call failed
#define KIND_INTERNAL "internal"       // ephem's own halves disagree
#define KIND_PERMISSION "permission"   // the kernel refused (EPERM)
#define KIND_UNSUPPORTED "unsupported" // the kernel lacks a feature
#define KIND_USAGE "usage"             // the spec or image cannot work
#define KIND_NOTFOUND "notfound"       // the command is not in the image
#define KIND_BUSY "busy"               // the session is attached elsewhere

#endif
