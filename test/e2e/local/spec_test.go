package local_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestImageConfig: the image's Entrypoint, Cmd, Env, WorkingDir and User
// are honoured as a container runtime does, and flags override them.
func TestImageConfig(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	cf, err := f.images["busybox"].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Entrypoint = []string{"sh", "-c"}
	cfg.Cmd = []string{`echo "foo=$FOO pwd=$(pwd) uid=$(id -u) args=$0"`}
	cfg.Env = append(cfg.Env, "FOO=from-image")
	cfg.WorkingDir = "/tmp"
	cfg.User = "65534"
	img, err := mutate.Config(f.images["busybox"], cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref := f.registry + "/ephem/configured:test"
	if err := testimages.Push(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) string {
		args := append([]string{"debug", tg.ref(), "-q", "--image", ref}, extra...)
		r := f.ephem(t, args...)
		if r.ExitCode != 0 {
			t.Fatalf("ephem %v: exit %d: %s", args, r.ExitCode, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	if got, want := run(), "foo=from-image pwd=/tmp uid=65534 args=sh"; got != want {
		t.Errorf("image defaults: %q, want %q", got, want)
	}
	if got, want := run("-e", "FOO=flag", "-w", "/", "-u", "0:0"), "foo=flag pwd=/ uid=0 args=sh"; got != want {
		t.Errorf("with --env/--workdir/--user: %q, want %q", got, want)
	}
	if got, want := run("--arguments-only", "--", "echo only-args"), "only-args"; got != want {
		t.Errorf("--arguments-only: %q, want %q", got, want)
	}
	if got, want := run("--", "id", "-u"), "65534"; got != want {
		t.Errorf("command replaces the entrypoint: %q, want %q", got, want)
	}
}

// TestProfiles: each profile gives the capabilities and no_new_privs
// kubectl's profile of the same name implies.
func TestProfiles(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	const sysPtrace, netAdmin, netRaw, sysAdmin = 19, 12, 13, 21
	get := func(profile string, extra ...string) map[string]string {
		args := append([]string{"debug", tg.ref(), "-q", "--profile", profile, "--image", f.busybox}, extra...)
		args = append(args, "--", "cat", "/proc/self/status")
		r := f.ephem(t, args...)
		if r.ExitCode != 0 {
			t.Fatalf("profile %s: exit %d: %s", profile, r.ExitCode, r.Stderr)
		}
		return status(r.Stdout)
	}
	s := get("general")
	if !hasCap(s["CapEff"], sysPtrace) || hasCap(s["CapEff"], sysAdmin) || s["NoNewPrivs"] != "1" {
		t.Errorf("general: CapEff %s NoNewPrivs %s, want SYS_PTRACE, no SYS_ADMIN, no_new_privs", s["CapEff"], s["NoNewPrivs"])
	}
	s = get("baseline")
	if hasCap(s["CapEff"], sysPtrace) || !hasCap(s["CapEff"], netRaw) {
		t.Errorf("baseline: CapEff %s, want the runtime default (NET_RAW, no SYS_PTRACE)", s["CapEff"])
	}
	s = get("netadmin")
	if !hasCap(s["CapEff"], netAdmin) || !hasCap(s["CapEff"], netRaw) {
		t.Errorf("netadmin: CapEff %s, want NET_ADMIN and NET_RAW", s["CapEff"])
	}
	s = get("sysadmin")
	if s["CapEff"] != s["CapBnd"] || !hasCap(s["CapEff"], sysAdmin) || s["NoNewPrivs"] != "0" {
		t.Errorf("sysadmin: CapEff %s CapBnd %s NoNewPrivs %s, want all capabilities and no no_new_privs", s["CapEff"], s["CapBnd"], s["NoNewPrivs"])
	}
	if s := get("general"); s["Seccomp"] != "0" {
		t.Errorf("general: Seccomp %s, want 0 (kubectl's general sets no seccomp profile)", s["Seccomp"])
	}
	var r e2eutil.Result
	s = get("restricted", "--user", "65534")
	if s["CapEff"] != "0000000000000000" || s["CapBnd"] != "0000000000000000" || s["NoNewPrivs"] != "1" || !strings.HasPrefix(s["Uid"], "65534") {
		t.Errorf("restricted: CapEff %s CapBnd %s NoNewPrivs %s Uid %s, want none, no_new_privs, 65534", s["CapEff"], s["CapBnd"], s["NoNewPrivs"], s["Uid"])
	}
	if s["Seccomp"] != "2" {
		t.Errorf("restricted: Seccomp %s, want 2 (the runtime-default filter)", s["Seccomp"])
	}
	// An unprivileged user namespace is allowed by the kernel but not by
	// the runtime-default filter.
	r = f.ephem(t, "debug", tg.ref(), "-q", "--profile", "restricted", "--user", "65534", "--image", f.busybox, "--", "unshare", "-U", "true")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "not permitted") {
		t.Errorf("restricted: unshare -U: exit %d %q, want refused", r.ExitCode, r.Stderr)
	}
	if r := f.ephem(t, "debug", tg.ref(), "-q", "--profile", "baseline", "--user", "65534", "--image", f.busybox, "--", "unshare", "-U", "true"); r.ExitCode != 0 {
		t.Errorf("baseline: unshare -U: exit %d %q, want allowed (no seccomp)", r.ExitCode, r.Stderr)
	}
	// restricted refuses root, with a way out.
	r = f.ephem(t, "debug", tg.ref(), "-q", "--profile", "restricted", "--image", f.busybox, "--", "true")
	if r.ExitCode != 64 || !strings.Contains(r.Stderr, "--user") {
		t.Errorf("restricted as root: exit %d %q, want 64 suggesting --user", r.ExitCode, r.Stderr)
	}
}
