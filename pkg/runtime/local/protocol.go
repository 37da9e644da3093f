package local

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Message types on the control socket.
const (
	msgConfig  = "config"  // host → init: the initConfig
	msgSignal  = "signal"  // host → init: deliver Signal to the command
	msgKill    = "kill"    // host → init: end the session now
	msgDetach  = "detach"  // host → init: the client leaves; keep running
	msgError   = "error"   // init → host: setting up failed
	msgWarning = "warning" // init → host: something optional failed
	msgPTY     = "pty"     // init → host: the terminal's master, as SCM_RIGHTS
	msgStarted = "started" // init → host: the command runs
	msgExit    = "exit"    // init → host: the command ended with Code
)

// envAttach names init's descriptor of the listening socket a detached
// session is reattached through.
const envAttach = "_EPHEM_ATTACH"

// message is one datagram on the control socket.
type message struct {
	T      string `json:"t"`
	Kind   string `json:"kind,omitempty"`
	Errno  int    `json:"errno,omitempty"`
	Msg    string `json:"msg,omitempty"`
	Code   int    `json:"code,omitempty"`
	Signal int    `json:"signal,omitempty"`
}

// maxMessage bounds one datagram. The config does not travel in one (see
// sendConfig): every other message is small.
const maxMessage = 1 << 20

// maxConfig bounds the config init reads: several times what execve takes
// as a command's arguments and environment.
const maxConfig = 64 << 20

// conn is one end of the control socket.
type conn struct {
	f   *os.File
	buf []byte // reused by recv, which one goroutine calls
}

func (c *conn) send(m message, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding %s message: %w", m.T, err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(int(c.f.Fd()), b, oob, nil, 0); err != nil {
		return fmt.Errorf("sending %s message: %w", m.T, err)
	}
	return nil
}

// sendConfig sends cfg to init in a sealed memfd (a config may be far
// larger than one datagram), and with it targetFD, a stopped target's
// filesystem as a detached mount, unless it is negative.
func (c *conn) sendConfig(cfg *initConfig, targetFD int) error {
	b, err := cfg.encode()
	if err != nil {
		return fmt.Errorf("encoding the config: %w", err)
	}
	if len(b) > maxConfig {
		return fmt.Errorf("the config has %d bytes, more than %d", len(b), maxConfig)
	}
	fd, err := unix.MemfdCreate("ephem-config", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("creating the config's memfd: %w", err)
	}
	defer func() { _ = unix.Close(fd) }()
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err != nil {
			return fmt.Errorf("writing the config's memfd: %w", err)
		}
		off += n
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("sealing the config's memfd: %w", err)
	}
	if targetFD >= 0 {
		return c.send(message{T: msgConfig}, fd, targetFD)
	}
	return c.send(message{T: msgConfig}, fd)
}

// recv reads one message and any descriptors passed with it. io.EOF-like
// closure is reported as errClosed.
func (c *conn) recv() (message, []int, error) {
	if c.buf == nil {
		c.buf = make([]byte, maxMessage)
	}
	buf := c.buf
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return message{}, nil, fmt.Errorf("reading the control socket: %w", err)
		}
		if n == 0 && oobn == 0 {
			return message{}, nil, errClosed
		}
		var fds []int
		if oobn > 0 {
			scms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return message{}, nil, fmt.Errorf("parsing control message: %w", err)
			}
			for _, s := range scms {
				got, err := unix.ParseUnixRights(&s)
				if err == nil {
					fds = append(fds, got...)
				}
			}
		}
		var m message
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return message{}, nil, fmt.Errorf("decoding control message: %w", err)
		}
		return m, fds, nil
	}
}

// maxText bounds the text of one warning or error the host prints.
const maxText = 2048

// printable is init's text as the host may print it: a process of the
// debug container that can trace init can make it send anything, so
// control characters (terminal escapes) are replaced and the length cut.
func printable(s string) string {
	if len(s) > maxText {
		s = s[:maxText] + "..."
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

type closedError struct{}

func (closedError) Error() string { return "control socket closed" }

var errClosed error = closedError{}

// socketPair returns the host's and the init's ends of a control socket.
func socketPair() (host, init *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the control socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "ephem-ctl-host"), os.NewFile(uintptr(fds[1]), "ephem-ctl-init"), nil
}
