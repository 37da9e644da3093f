package image

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestClassifyLocalErrno checks that a local file's errno, which is a
// net.Error (syscall.Errno has Timeout and Temporary), is not taken for
// the network's, while the network's own errors still are.
func TestClassifyLocalErrno(t *testing.T) {
	local := []error{
		&fs.PathError{Op: "lstat", Path: "/layout/blobs/sha256/x", Err: syscall.ENOENT},
		&fs.PathError{Op: "open", Path: "/layout/blobs/sha256/x", Err: syscall.EACCES},
		syscall.EIO,
	}
	for _, err := range local {
		if got := classify(err); errors.Is(got, ErrUnreachable) {
			t.Errorf("classify(%v) = %v, want no ErrUnreachable", err, got)
		}
		if got := dataErr(err); !errors.Is(got, ErrCorrupt) {
			t.Errorf("dataErr(%v) = %v, want ErrCorrupt", err, got)
		}
		src := &source{origin: "OCI layout /layout"}
		if got := src.dataErr(err); !errors.Is(got, ErrCorrupt) || !strings.Contains(got.Error(), "OCI layout /layout") {
			t.Errorf("local dataErr(%v) = %v, want ErrCorrupt naming the layout", err, got)
		}
	}
	network := []error{
		&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
		&net.DNSError{Err: "no such host", Name: "registry.invalid"},
		&stallError{host: "registry.example", d: 1},
	}
	for _, err := range network {
		if got := classify(err); !errors.Is(got, ErrUnreachable) {
			t.Errorf("classify(%v) = %v, want ErrUnreachable", err, got)
		}
	}
}

// TestOneLine checks that a registry's text is condensed to one printable
// line of bounded length, still unwrapping to the original error.
func TestOneLine(t *testing.T) {
	body := "<html>\r\n\t<body>\x1b[31mno\x1b[0m</body>\n</html>\n"
	orig := fmt.Errorf("GET /v2/x: 401 Unauthorized: %s", body)
	got := oneLine(orig)
	if want := "GET /v2/x: 401 Unauthorized: <html> <body> [31mno [0m</body> </html>"; got.Error() != want {
		t.Errorf("oneLine = %q, want %q", got.Error(), want)
	}
	if !errors.Is(got, orig) {
		t.Errorf("oneLine does not unwrap to the original error")
	}
	long := oneLine(errors.New(strings.Repeat("é", 2*maxLine)))
	if r := []rune(long.Error()); len(r) != maxLine+1 || r[maxLine] != '…' {
		t.Errorf("long text cut to %d runes: %q", len(r), long.Error())
	}
	var le *lineError
	if errors.As(oneLine(errors.New("plain")), &le) {
		t.Errorf("a clean message is rewrapped")
	}
}
