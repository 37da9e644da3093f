//go:build linux && cgo && !static

package pcap

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

// libpcap's structs, declared here so that no libpcap headers are needed
// to build ephem.
struct ephem_bpf_insn {
	unsigned short code;
	unsigned char jt;
	unsigned char jf;
	unsigned int k;
};

struct ephem_bpf_program {
	unsigned int bf_len;
	struct ephem_bpf_insn *bf_insns;
};

// ephem_libpcap holds the functions ephem calls, found with dlsym.
struct ephem_libpcap {
	void *handle;
	void *(*open_dead)(int, int);
	int (*compile)(void *, struct ephem_bpf_program *, const char *, int, unsigned int);
	char *(*geterr)(void *);
	void (*freecode)(struct ephem_bpf_program *);
	void (*close)(void *);
};

// ephem_libpcap_open loads the first of libpcap's names that dlopen finds
// and looks its functions up; on failure it returns dlerror's message.
static const char *ephem_libpcap_open(struct ephem_libpcap *l) {
	static const char *names[] = {"libpcap.so.0.8", "libpcap.so.1", "libpcap.so"};
	const char *err = "no libpcap";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		l->handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (l->handle != NULL)
			break;
		err = dlerror();
	}
	if (l->handle == NULL)
		return err;
	l->open_dead = dlsym(l->handle, "pcap_open_dead");
	l->compile = dlsym(l->handle, "pcap_compile");
	l->geterr = dlsym(l->handle, "pcap_geterr");
	l->freecode = dlsym(l->handle, "pcap_freecode");
	l->close = dlsym(l->handle, "pcap_close");
	if (!l->open_dead || !l->compile || !l->geterr || !l->freecode || !l->close) {
		dlclose(l->handle);
		l->handle = NULL;
		return "a libpcap function is missing";
	}
	return NULL;
}

// ephem_libpcap_compile compiles filter for link type lt, optimized, with
// no netmask, into prog; it returns NULL or libpcap's error, copied into
// err (errlen bytes).
static int ephem_libpcap_compile(struct ephem_libpcap *l, int lt, int snaplen, const char *filter,
		struct ephem_bpf_program *prog, char *err, size_t errlen) {
	void *p = l->open_dead(lt, snaplen);
	if (p == NULL) {
		snprintf(err, errlen, "pcap_open_dead failed");
		return -1;
	}
	if (l->compile(p, prog, filter, 1, 0xffffffffU) != 0) {
		snprintf(err, errlen, "%s", l->geterr(p));
		l->close(p);
		return -1;
	}
	l->close(p);
	return 0;
}

static void ephem_libpcap_freecode(struct ephem_libpcap *l, struct ephem_bpf_program *prog) {
	l->freecode(prog);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/net/bpf"
)

// libpcapBuilt says whether this build can load libpcap at all.
const libpcapBuilt = true

// libpcap is the library once loaded; mu serialises compiling, as
// libpcap's compiler is not thread-safe in older versions.
var libpcap struct {
	once sync.Once
	mu   sync.Mutex
	lib  C.struct_ephem_libpcap
	err  error
}

// loadLibpcap loads libpcap into ephem's process, once.
func loadLibpcap() error {
	libpcap.once.Do(func() {
		if msg := C.ephem_libpcap_open(&libpcap.lib); msg != nil {
			libpcap.err = fmt.Errorf("loading libpcap: %w: %s", errNoLibpcap, C.GoString(msg))
		}
	})
	return libpcap.err
}

// libpcapCompile compiles expr with libpcap for packets of link type lt,
// each accepted packet kept up to snaplen bytes. It returns an
// errNoLibpcap error when libpcap cannot be loaded.
func libpcapCompile(expr string, lt LinkType, snaplen uint32) ([]bpf.RawInstruction, error) {
	if err := loadLibpcap(); err != nil {
		return nil, err
	}
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	var prog C.struct_ephem_bpf_program
	errbuf := make([]byte, 512) // PCAP_ERRBUF_SIZE is 256
	libpcap.mu.Lock()
	defer libpcap.mu.Unlock()
	if C.ephem_libpcap_compile(&libpcap.lib, C.int(lt), C.int(snaplen), cexpr, &prog,
		(*C.char)(unsafe.Pointer(&errbuf[0])), C.size_t(len(errbuf))) != 0 {
		return nil, errors.New(C.GoString((*C.char)(unsafe.Pointer(&errbuf[0]))))
	}
	defer C.ephem_libpcap_freecode(&libpcap.lib, &prog)
	ins := unsafe.Slice(prog.bf_insns, int(prog.bf_len))
	raw := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		raw[i] = bpf.RawInstruction{Op: uint16(in.code), Jt: uint8(in.jt), Jf: uint8(in.jf), K: uint32(in.k)}
	}
	return raw, nil
}
