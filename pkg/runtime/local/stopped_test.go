package local

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadOnlyLayers stacks two layers, the upper one whiting out a file of
// the lower, as a detached read-only mount, reads through it with the
// copier's rootFS, and finds that nothing can be written.
func TestReadOnlyLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts an overlay")
	}
	base := t.TempDir()
	upper, lower := filepath.Join(base, "upper"), filepath.Join(base, "lower")
	for _, d := range []string{upper + "/var/log", upper + "/etc", lower + "/var/log", lower + "/etc"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(lower+"/etc/app.conf", "old")
	write(lower+"/var/log/app.log", "lower")
	write(upper+"/var/log/app.log", "upper")
	// An overlay whiteout: a 0/0 character device.
	if err := unix.Mknod(upper+"/etc/app.conf", unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	for _, layers := range [][]string{{upper, lower}, {lower}} {
		fd, err := readOnlyLayers(layers)
		if err != nil {
			t.Fatalf("readOnlyLayers(%v): %v", layers, err)
		}
		r := &rootFS{fd: fd}
		read := func(p string) (string, error) {
			f, err := r.open(p, unix.O_RDONLY, true)
			if err != nil {
				return "", err
			}
			defer func() { _ = unix.Close(f) }()
			b := make([]byte, 64)
			n, err := unix.Read(f, b)
			return string(b[:max(n, 0)]), err
		}
		want := "upper"
		if len(layers) == 1 {
			want = "lower"
		}
		if got, err := read("/var/log/app.log"); err != nil || got != want {
			t.Errorf("%v: /var/log/app.log = %q, %v; want %q", layers, got, err, want)
		}
		if _, err := read("/etc/app.conf"); len(layers) == 2 && !errors.Is(err, unix.ENOENT) {
			t.Errorf("%v: the whited-out /etc/app.conf: %v, want ENOENT", layers, err)
		}
		if _, err := r.open("/x", unix.O_WRONLY|unix.O_CREAT, true); !errors.Is(err, unix.EROFS) {
			t.Errorf("%v: creating /x: %v, want EROFS", layers, err)
		}
		r.close()
	}
	if _, err := os.Stat(upper + "/x"); err == nil {
		t.Errorf("a file appeared in the upper layer")
	}
	if _, err := readOnlyLayers([]string{upper, filepath.Join(base, "none")}); err == nil {
		t.Errorf("readOnlyLayers with a missing layer succeeded")
	}
}
