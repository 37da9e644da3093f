package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUnprivilegedExtract: an unprivileged unpack keeps modes, drops
// ownership, device nodes and root-only xattrs, makes whiteouts, and marks
// opaque directories with user.overlay.opaque (see unprivileged). As root
// it runs the same code paths; the rootless e2e test runs them as a user.
func TestUnprivilegedExtract(t *testing.T) {
	saved := unprivileged
	unprivileged = true
	t.Cleanup(func() { unprivileged = saved })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o4750, Uid: 1234, Gid: 2345, Size: 2,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "x", "SCHILY.xattr.user.keep": "v"}},
		{Name: "ro/", Typeflag: tar.TypeDir, Mode: 0o555},
		{Name: "ro/f", Typeflag: tar.TypeReg, Mode: 0o444},
		{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: ".wh.gone", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte("hi"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := extract(&buf, dst, &unpackLimit{minFree: -1}); err != nil {
		t.Fatalf("extract: %v", err)
	}
	v := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dst, "d"), "user.overlay.opaque", v); err != nil || string(v[:n]) != "y" {
		t.Errorf("d: user.overlay.opaque %q, %v; want y", v[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dst, "d"), "trusted.overlay.opaque", v); err == nil {
		t.Errorf("d: has trusted.overlay.opaque, which only root may set")
	}
	if _, err := os.Lstat(filepath.Join(dst, "d", ".wh..wh..opq")); err == nil {
		t.Errorf("the opaque marker was unpacked as a file")
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "d", "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o4750 || int(st.Uid) != os.Geteuid() {
		t.Errorf("d/f: mode %o uid %d, want 4750 and the unpacking user %d", st.Mode&0o7777, st.Uid, os.Geteuid())
	}
	if _, err := unix.Lgetxattr(filepath.Join(dst, "d", "f"), "security.capability", v); err == nil {
		t.Errorf("d/f: kept security.capability")
	}
	if n, err := unix.Lgetxattr(filepath.Join(dst, "d", "f"), "user.keep", v); err != nil || string(v[:n]) != "v" {
		t.Errorf("d/f: user.keep %q, %v; want v", v[:n], err)
	}
	if err := unix.Lstat(filepath.Join(dst, "ro"), &st); err != nil || st.Mode&0o7777 != 0o755 {
		t.Errorf("ro: %v mode %o, want 755 (0555 plus u+rwx)", err, st.Mode&0o7777)
	}
	if _, err := os.Lstat(filepath.Join(dst, "null")); err == nil {
		t.Errorf("the device node was made")
	}
	if err := unix.Lstat(filepath.Join(dst, "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("gone: %v mode %o rdev %d, want a 0/0 whiteout", err, st.Mode, st.Rdev)
	}
}
