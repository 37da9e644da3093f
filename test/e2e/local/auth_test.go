package local_test

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// TestRegistryAuth: credentials come from the Docker config (DOCKER_CONFIG),
// as docker and crane read them; missing or wrong ones are a permission
// error.
func TestRegistryAuth(t *testing.T) {
	f := setup(t)
	tg := startTarget(t, f, targetOptions{})
	addr := startAuthRegistry(t, "ephem", "s3cret")
	ref := addr + "/private/busybox:test"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, f.images["busybox"], remote.WithAuth(&authn.Basic{Username: "ephem", Password: "s3cret"})); err != nil {
		t.Fatalf("pushing with credentials: %v", err)
	}
	writeConfig := func(user, pass string) string {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, addr, auth)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	args := []string{"debug", tg.ref(), "-q", "--image", ref, "--", "wget", "-qO-", "localhost:80"}

	t.Setenv("DOCKER_CONFIG", writeConfig("ephem", "s3cret"))
	if r := e2eutil.Ephem(t, f.bin, t.TempDir(), time.Minute, args...); r.ExitCode != 0 {
		t.Errorf("with credentials: exit %d: %s", r.ExitCode, r.Stderr)
	}
	t.Setenv("DOCKER_CONFIG", writeConfig("ephem", "wrong"))
	expectFailure(t, f, 77, []string{addr}, args...)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	expectFailure(t, f, 77, []string{addr}, args...)
}

// startAuthRegistry runs Debian's docker-registry on 127.0.0.1 with one
// htpasswd user.
func startAuthRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: %s
auth:
  htpasswd:
    realm: ephem-test
    path: %s/htpasswd
`, dir, addr, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 15*time.Second, "the registry", func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	return addr
}
