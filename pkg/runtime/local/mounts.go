package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// devices bind-mounted from the host into the container's minimal /dev.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// setupRoot finishes the container's filesystem under root (the overlay the
// constructor mounted) and enters it: /proc of the joined PID namespace, a
// minimal /dev with its own devpts, /sys, and the target's name resolution
// files. The constructor of the re-executed init pivots into it (the image
// need not have the dynamic loader ephem's binary needs).
func setupRoot(cfg *initConfig, warn func(string)) error {
	root := cfg.Rootfs // "." : the constructor left us in the image root
	if !cfg.Privileged {
		// No device node of the image's, or one the command makes, may
		// reach a host device: only the standard ones bound into /dev.
		if err := addMountFlags(root, unix.MS_NODEV); err != nil {
			return fmt.Errorf("making the image root nodev: %w", err)
		}
	}
	for name, data := range cfg.Files {
		if err := writeFile(root, name, data); err != nil {
			warn(fmt.Sprintf("copying the target's %s: %v", name, err))
		}
	}
	if err := mountAt(root, "/proc", "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := setupDev(root, cfg.Privileged); err != nil {
		return err
	}
	if err := setupSys(root, cfg.Privileged); err != nil {
		warn(err.Error())
	}
	if err := setupStopped(root, cfg); err != nil { // a target that runs nothing: /target
		return err
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering the image root: %w", err)
	}
	return nil
}

// mountAt mounts source on root+dir, creating the directory.
func mountAt(root, dir, source, fstype string, flags uintptr, data string) error {
	target, err := realDir(root, dir)
	if err != nil {
		return fmt.Errorf("creating %s in the image: %w", dir, err)
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", fstype, dir, err)
	}
	return nil
}

func setupDev(root string, privileged bool) error {
	dev, err := realDir(root, "/dev")
	if err != nil {
		return fmt.Errorf("creating /dev in the image: %w", err)
	}
	if privileged {
		if err := mountAt(root, "/dev", "/dev", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
	} else {
		// nodev: the standard nodes are bind mounts of their own and keep
		// working; a node made in /dev does not.
		if err := mountAt(root, "/dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
			return err
		}
		for _, d := range devices {
			p := filepath.Join(dev, d)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
			if err != nil {
				return fmt.Errorf("creating /dev/%s: %w", d, err)
			}
			f.Close()
			if err := unix.Mount("/dev/"+d, p, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("binding /dev/%s: %w", d, err)
			}
		}
		for name, to := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
			"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore"} {
			if err := os.Symlink(to, filepath.Join(dev, name)); err != nil {
				return fmt.Errorf("linking /dev/%s: %w", name, err)
			}
		}
		if err := mountAt(root, "/dev/shm", "shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
			return err
		}
	}
	// A private devpts: the session's terminal lives here, not on the host.
	pts, err := realDir(root, "/dev/pts")
	if err != nil {
		return fmt.Errorf("creating /dev/pts: %w", err)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NOEXEC)
	if err := unix.Mount("devpts", pts, "devpts", flags, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		// gid 5 may not be mapped in the target's user namespace.
		if err := unix.Mount("devpts", pts, "devpts", flags, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
			return fmt.Errorf("mounting devpts: %w", err)
		}
	}
	ptmx := filepath.Join(dev, "ptmx")
	if privileged {
		// /dev is the host's own: never replace its ptmx (that would
		// change the host's), cover it in this mount namespace instead.
		if err := unix.Mount(filepath.Join(pts, "ptmx"), ptmx, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/ptmx: %w", err)
		}
		return nil
	}
	_ = os.Remove(ptmx)
	if err := os.Symlink("pts/ptmx", ptmx); err != nil {
		return fmt.Errorf("linking /dev/ptmx: %w", err)
	}
	return nil
}

// setupSys mounts a sysfs showing the joined network namespace's devices,
// read-only unless privileged; where sysfs cannot be mounted (a network
// namespace owned by another user namespace) it binds the host's.
func setupSys(root string, privileged bool) error {
	var ro uintptr = unix.MS_RDONLY
	if privileged {
		ro = 0
	}
	err := mountAt(root, "/sys", "sysfs", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|ro, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		return err
	}
	if err := mountAt(root, "/sys", "/sys", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return unix.Mount("", filepath.Join(root, "sys"), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, "")
}

// addMountFlags adds flags to those of the mount at dir (the root of a
// mount) by a bind remount, keeping the ones it has: a mount inherited from
// a more privileged user namespace has them locked, and dropping one fails.
func addMountFlags(dir string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	keep := uintptr(0)
	for stFlag, msFlag := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
		unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if st.Flags&stFlag != 0 {
			keep |= msFlag
		}
	}
	return unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|keep|flags, "")
}

// realDir returns root+dir after making every component of dir a real
// directory: the image is not chrooted yet, so a symlink in it (say /proc ->
// /etc) must not lead a mount or a write onto the host. Symlinks are replaced;
// the overlay's upper layer takes the change.
func realDir(root, dir string) (string, error) {
	p := root
	for _, part := range strings.Split(filepath.Clean("/"+dir), "/") {
		if part == "" {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			if err := os.Remove(p); err != nil {
				return "", err
			}
		case !errors.Is(err, os.ErrNotExist):
			return "", err
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", err
		}
	}
	return p, nil
}

// writeFile writes data to root+name, replacing a symlink rather than
// following it out of the image.
func writeFile(root, name string, data []byte) error {
	dir, err := realDir(root, filepath.Dir(filepath.Clean("/"+name)))
	if err != nil {
		return err
	}
	p := filepath.Join(dir, filepath.Base(name))
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return os.WriteFile(p, data, 0o644)
}
