package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime/local/nsenter"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// defaultPath is the PATH of an image that sets none, as runc and Docker use.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// process is the session's command, prepared inside the container's root.
type process struct {
	cfg    *initConfig
	cmd    *exec.Cmd
	master *os.File // the terminal's master end, sent to the host
	slave  *os.File
}

// resolveUser resolves the command's user against the image's root.
func resolveUser(cfg *initConfig) (*user.ExecUser, error) {
	if len(cfg.Argv) == 0 {
		return nil, &initError{nsenter.KindUsage, errors.New("the image has no entrypoint or cmd: give a command after --")}
	}
	u, err := user.GetExecUserPath(cfg.User, &user.ExecUser{Home: "/"}, "/etc/passwd", "/etc/group")
	if err != nil {
		return nil, &initError{nsenter.KindUsage, fmt.Errorf("resolving user %q in the image: %w", cfg.User, err)}
	}
	if cfg.RunAsNonRoot && u.Uid == 0 {
		return nil, &initError{nsenter.KindUsage, errors.New("the profile requires a non-root user but the image runs as root: pass --user UID or use another profile")}
	}
	return u, nil
}

// newProcess prepares the command of user u (init already runs as u, with
// its groups) with the image's environment and the standard streams.
func newProcess(cfg *initConfig, u *user.ExecUser) (*process, error) {
	env := environment(cfg, u.Home)
	path, err := lookPath(cfg.Argv[0], pathOf(env))
	if err != nil {
		return nil, &initError{nsenter.KindNotFound, err}
	}
	cmd := &exec.Cmd{Path: path, Args: cfg.Argv, Env: env, Dir: cfg.WorkingDir}
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	if fi, err := os.Stat(cmd.Dir); err != nil || !fi.IsDir() {
		what := "does not exist in the image"
		if err == nil {
			what = "is not a directory"
		} else if !errors.Is(err, os.ErrNotExist) {
			what = "cannot be entered: " + err.Error()
		}
		return nil, &initError{nsenter.KindUsage, fmt.Errorf("working directory %s %s: pass another --workdir", cmd.Dir, what)}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(u.Uid), Gid: uint32(u.Gid), NoSetGroups: true},
	}
	p := &process{cfg: cfg, cmd: cmd}
	if cfg.TTY {
		if err := p.openTerminal(u.Uid); err != nil {
			return nil, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
		return p, nil
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if cfg.Stdin {
		cmd.Stdin = os.Stdin
	}
	return p, nil
}

// environment is the image's environment with PATH, HOME, HOSTNAME and TERM
// filled in where the image leaves them out.
func environment(cfg *initConfig, home string) []string {
	env := append([]string{}, cfg.Env...)
	has := func(k string) bool {
		for _, e := range env {
			if strings.HasPrefix(e, k+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		env = append(env, "PATH="+defaultPath)
	}
	if !has("HOME") {
		env = append(env, "HOME="+home)
	}
	if !has("HOSTNAME") {
		if h, err := os.Hostname(); err == nil {
			env = append(env, "HOSTNAME="+h)
		}
	}
	if cfg.TTY && !has("TERM") {
		env = append(env, "TERM=xterm")
	}
	return env
}

func pathOf(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v
		}
	}
	return defaultPath
}

// lookPath finds file in the image's PATH (not init's), as runc does.
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", fmt.Errorf("starting %q in the image: %w", file, err)
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("starting %q: executable file not found in the image's $PATH (%s)", file, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

func setgroupsAllowed() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err != nil || !strings.HasPrefix(string(b), "deny")
}

// openTerminal allocates a terminal in the container's own devpts.
func (p *process) openTerminal(uid int) error {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return fmt.Errorf("unlocking the terminal: %w", err)
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		m.Close()
		return fmt.Errorf("opening the terminal's slave: %w", errno)
	}
	s := os.NewFile(fd, "pts")
	if p.cfg.Rows > 0 && p.cfg.Cols > 0 {
		_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: p.cfg.Rows, Col: p.cfg.Cols})
	}
	_ = s.Chown(uid, 5) // the tty group, as runc does; absent in some images
	p.master, p.slave = m, s
	return nil
}

// start runs the command with the inheritable set, no_new_privs and seccomp
// of the profile. They are per-thread, so they are set on a locked thread
// that forks the command and is then thrown away with its goroutine.
func (p *process) start() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := p.restrictThread(); err != nil {
			errc <- err
			return
		}
		errc <- p.cmd.Start()
	}()
	err := <-errc
	if p.slave != nil {
		p.slave.Close()
	}
	if err != nil {
		return &initError{nsenter.KindOS, fmt.Errorf("starting %q: %w", p.cfg.Argv[0], err)}
	}
	return nil
}

// restrictThread sets what the constructor's drop_to leaves per thread:
// the inheritable set within the container's (root's survives exec
// whatever the bounding set says), no_new_privs and seccomp. The bounding
// set is the container's already.
func (p *process) restrictThread() error {
	keep := map[int]bool{}
	for _, c := range p.cfg.Caps {
		keep[c] = true
	}
	// Root's inheritable set survives exec whatever the bounding set says.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	for i := range data {
		var mask uint32
		for c := range keep {
			if c/32 == i {
				mask |= 1 << (uint(c) % 32)
			}
		}
		data[i].Inheritable &= mask
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	if p.cfg.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	if p.cfg.Seccomp {
		return installSeccomp()
	}
	return nil
}

// signal delivers sig to the command's process group (its session's, with
// a terminal).
func (p *process) signal(sig unix.Signal) {
	pid := p.cmd.Process.Pid
	if err := unix.Kill(-pid, sig); err != nil {
		_ = unix.Kill(pid, sig)
	}
}

// killAll kills every descendant of init until none is left; init is the
// session's subreaper, so nothing escapes by double-forking. The returned
// channel is never closed; it marks that killing has begun.
func (p *process) killAll() <-chan struct{} {
	started := make(chan struct{})
	go func() {
		for {
			killDescendants(os.Getpid())
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return started
}

// killDescendants sends SIGKILL to every process below pid, from /proc.
func killDescendants(pid int) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	children := map[int][]int{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], n)
	}
	queue := append([]int{}, children[pid]...)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		_ = unix.Kill(n, unix.SIGKILL)
		queue = append(queue, children[n]...)
	}
}
