package testimages

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RegistryBinary is Debian's docker-registry (CNCF distribution).
const RegistryBinary = "/usr/bin/docker-registry"

// refNameAnnotation names an image in an OCI layout's index.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Push writes img to ref, a reference on a plain-HTTP registry such as
// "127.0.0.1:5000/ephem/busybox:1".
func Push(ctx context.Context, img v1.Image, ref string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// WriteLayout adds img to the OCI layout in dir (created when missing) under
// the ref name tag, replacing any image of that name.
func WriteLayout(dir string, img v1.Image, tag string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	err = p.ReplaceImage(img, match.Annotation(refNameAnnotation, tag),
		layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
	if err != nil {
		return fmt.Errorf("writing %s to OCI layout %s: %w", tag, dir, err)
	}
	return nil
}

// StartRegistry runs Debian's docker-registry on 127.0.0.1 on a free port,
// storing its data and log under dir, and waits until it answers. It returns
// the registry's address (host:port) and a function that stops it. The
// registry is also killed if the calling process dies.
func StartRegistry(ctx context.Context, dir string) (addr string, stop func() error, err error) {
	if err := ensureFile(ctx, RegistryBinary, "docker-registry"); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", nil, fmt.Errorf("creating registry directory: %w", err)
	}
	addr, err = freeAddr()
	if err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(RegistryConfig(addr, filepath.Join(dir, "data"))), 0o644); err != nil {
		return "", nil, fmt.Errorf("writing registry config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("opening registry log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(RegistryBinary, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				err = <-done
			}
			stopErr = stoppedBySignal(err)
		})
		return stopErr
	}
	if err := WaitRegistry(ctx, addr, 15*time.Second); err != nil {
		_ = stop()
		return "", nil, fmt.Errorf("starting docker-registry (log in %s): %w", dir, err)
	}
	return addr, stop, nil
}

// RegistryConfig returns a docker-registry configuration listening on addr
// (plain HTTP) with filesystem storage under root.
func RegistryConfig(addr, root string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, root, addr)
}

// WaitRegistry polls http://addr/v2/ until it answers 200 or timeout passes.
func WaitRegistry(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + addr + "/v2/"
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("creating request: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("GET %s: %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for registry %s: %w (last: %w)", addr, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stoppedBySignal returns the error of a registry's exit, or nil if it
// exited cleanly or because we signalled it.
func stoppedBySignal(err error) error {
	var exit *exec.ExitError
	if err == nil || (errors.As(err, &exit) && !exit.Exited()) {
		return nil
	}
	return fmt.Errorf("stopping docker-registry: %w", err)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WriteDockerTarball writes img as a `docker load` tarball tagged tag.
func WriteDockerTarball(path, tag string, img v1.Image) (err error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("parsing tag %q: %w", tag, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	if err := tarball.Write(ref, img, f); err != nil {
		return fmt.Errorf("writing docker tarball of %s: %w", tag, err)
	}
	return nil
}

// ServeBusybox starts a registry on 127.0.0.1 with its storage in dir and
// pushes the busybox test image (built or taken from the default cache)
// to it. It returns the image's reference, the registry's address and a
// function that stops the registry.
func ServeBusybox(ctx context.Context, dir string) (ref, addr string, stop func() error, err error) {
	img, err := Busybox(ctx, DefaultCacheDir())
	if err != nil {
		return "", "", nil, err
	}
	addr, stop, err = StartRegistry(ctx, dir)
	if err != nil {
		return "", "", nil, err
	}
	ref = Ref(addr, "busybox")
	if err := Push(ctx, img, ref); err != nil {
		_ = stop()
		return "", "", nil, err
	}
	return ref, addr, stop, nil
}
