package nsenter

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ctlMessage is the error message the constructor sends on the control
// socket (fail in nsenter.c).
type ctlMessage struct {
	T     string `json:"t"`
	Kind  string `json:"kind"`
	Errno int    `json:"errno"`
	Msg   string `json:"msg"`
}

// joinFailure runs the test binary with EnvJoin=spec, which the constructor
// must refuse, and returns the raw message it sent on the control socket
// and its exit code. If the constructor let the process through, -test.run
// keeps it from running any test.
func joinFailure(t *testing.T, spec string) ([]byte, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the constructor unshares a mount namespace before it reads the namespace list")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, child := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "child")
	defer host.Close()
	cmd := exec.Command(self, "-test.run=^$") //nolint:gosec // this test binary
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "_EPHEM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, EnvJoin+"="+spec, EnvCtl+"=3")
	cmd.ExtraFiles = []*os.File{child}
	out, err := cmd.CombinedOutput()
	child.Close()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the constructor: %v (%s)", err, out)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(int(host.Fd()), buf, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatalf("no message on the control socket (exit %d, output %q): %v", code, out, err)
	}
	return buf[:n], code
}

// decodeFailure checks that raw is one valid JSON error message of kind
// internal and returns it.
func decodeFailure(t *testing.T, raw []byte, code int) ctlMessage {
	t.Helper()
	var m ctlMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("the constructor's message is not valid JSON: %v\n%.300q", err, raw)
	}
	if code != 125 || m.T != "error" || m.Kind != KindInternal {
		t.Errorf("exit %d, message %+v; want 125 and an internal error", code, m)
	}
	return m
}

// TestFailEscapesJSON checks json_escape through the constructor: a
// namespace list item without a colon is echoed in the failure message,
// which must reach the host as valid JSON carrying the exact text, control
// characters, quotes and backslashes included.
func TestFailEscapesJSON(t *testing.T) {
	for _, text := range []string{
		`plain`,
		`quote" backslash\ both\" end\\`,
		"tab\t nl\n cr\r bel\a bs\b ff\f esc\x1b[31m del\x7f nul-less \x01\x02\x1e\x1f",
		"utf-8 é ☃ 𝄞 and a lone \\u0041 that must stay text",
		`"}{"t" "forged"} {"kind" "os"`, // no ':' or ',', which split the list
	} {
		raw, code := joinFailure(t, text)
		m := decodeFailure(t, raw, code)
		prefix := "bad namespace item " + text + ": "
		if !strings.HasPrefix(m.Msg, prefix) || len(m.Msg) == len(prefix) {
			t.Errorf("message %q, want %q followed by the errno's text", m.Msg, prefix)
		}
	}
}

// TestFailEscapesLongJSON checks that a message too long for the buffers
// is cut between escapes, never inside one: the JSON stays valid and the
// text it carries is a prefix of what the constructor meant to say.
//
// json_escape passes bytes from 0x80 up through as they are, so a cut may
// fall inside a UTF-8 sequence ("☃" here), and bytes that are no UTF-8
// ("\xff") reach the host as sent: not strictly JSON, which is UTF-8, but
// encoding/json, the host's decoder, reads each stray byte as U+FFFD.
func TestFailEscapesLongJSON(t *testing.T) {
	for _, unit := range []string{"\x01", `"`, `\`, "a", "☃", "\xff"} {
		// Every alignment of the 6-byte \u00XX escapes with the cut.
		for pad := range 6 {
			lead := strings.Repeat("a", pad)
			raw, code := joinFailure(t, lead+strings.Repeat(unit, 1100))
			m := decodeFailure(t, raw, code)
			body, rest, ok := strings.Cut(strings.TrimPrefix(m.Msg, "bad namespace item "+lead), ": ")
			if !ok || !strings.HasPrefix(m.Msg, "bad namespace item "+lead) || len(body) < 100 ||
				strings.Trim(body, unit+"\uFFFD") != "" || rest == "" {
				t.Errorf("unit %q after %d bytes: message %q (%d bytes of JSON), want the item cut short, then the errno's text",
					unit, pad, m.Msg, len(raw))
			}
		}
	}
}
