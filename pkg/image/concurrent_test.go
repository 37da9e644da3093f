package image_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

// helperEnv makes the test binary act as a separate ephem run: it opens the
// store in $EPHEM_HELPER_DIR and ensures $EPHEM_HELPER_REF.
const helperEnv = "EPHEM_IMAGE_TEST_HELPER"

func runHelper() int {
	s, err := image.Open(os.Getenv("EPHEM_HELPER_DIR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	img, err := s.Ensure(context.Background(), os.Getenv("EPHEM_HELPER_REF"), image.PullOptions{Policy: spec.PullMissing})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(img.Digest)
	return 0
}

func helperCmd(t *testing.T, dir, ref string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$") //nolint:gosec // this test binary
	cmd.Env = append(os.Environ(), helperEnv+"=1", "EPHEM_HELPER_DIR="+dir, "EPHEM_HELPER_REF="+ref)
	return cmd
}

// slowBlobs makes every blob GET take a while, so that concurrent pulls
// overlap.
func slowBlobs(reg *testRegistry) {
	reg.setTamper(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			time.Sleep(100 * time.Millisecond)
		}
		return false
	})
}

func TestEnsureConcurrentGoroutines(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("shared:1")
	img := randomImage(t, 256<<10, 4)
	push(t, ref, img)
	slowBlobs(reg)
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := make([]*image.Image, 4)
	errs := make([]error, 4)
	for i := range results {
		s := openStore(t, dir) // separate Stores: separate lock files, as separate runs
		wg.Go(func() { results[i], errs[i] = s.Ensure(context.Background(), ref, image.PullOptions{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Ensure %d: %v", i, err)
		}
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Errorf("Ensure %d differs (-0 +%d):\n%s", i, i, diff)
		}
	}
	if diff := cmp.Diff([]int{1, 1, 1, 1}, reg.layerGets(t, img)); diff != "" {
		t.Errorf("downloads per layer (-want +got); each layer must be unpacked once:\n%s", diff)
	}
}

func TestEnsureConcurrentProcesses(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("shared:2")
	img := randomImage(t, 256<<10, 4)
	push(t, ref, img)
	slowBlobs(reg)
	dir := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 3 {
		cmd := helperCmd(t, dir, ref)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		if outs[i].String() != outs[0].String() {
			t.Errorf("helper %d printed %q, helper 0 %q", i, outs[i], outs[0])
		}
	}
	if diff := cmp.Diff([]int{1, 1, 1, 1}, reg.layerGets(t, img)); diff != "" {
		t.Errorf("downloads per layer across processes (-want +got):\n%s", diff)
	}
	if got := len(layerDirs(t, dir)); got != 4 {
		t.Errorf("%d layer directories, want 4", got)
	}
}

// TestEnsureKilledMidPull kills a run with SIGKILL while it is unpacking a
// layer, and checks that nothing that looks complete is left behind.
func TestEnsureKilledMidPull(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("killed:1")
	img := randomImage(t, 1<<20, 2)
	push(t, ref, img)
	layers, _ := img.Layers()
	victim, _ := layers[1].Digest()
	halfway := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	reg.setTamper(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, victim.String()) {
			return false
		}
		rc, _ := layers[1].Compressed()
		b, _ := io.ReadAll(rc)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		_, _ = w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		halfway <- struct{}{}
		<-release // hold the connection until the test is done
		return true
	})
	dir := t.TempDir()
	cmd := helperCmd(t, dir, ref)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-halfway:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the helper never reached the victim layer:\n%s", out.String())
	}
	time.Sleep(100 * time.Millisecond) // let it write what it got
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error is expected

	d1, _ := layers[1].DiffID()
	if slices.Contains(layerDirs(t, dir), d1.Hex) {
		t.Errorf("the interrupted layer has an entry in layers/")
	}
	if len(tmpEntries(t, dir)) == 0 {
		t.Errorf("expected debris of the killed run in tmp/")
	}
	if refs, _ := os.ReadDir(filepath.Join(dir, "refs")); len(refs) != 0 {
		t.Errorf("the killed run recorded its reference")
	}
	s := openStore(t, dir) // Open collects debris nobody holds
	if tmp := tmpEntries(t, dir); len(tmp) != 0 {
		t.Errorf("tmp/ after Open: %v", tmp)
	}
	if _, err := s.Ensure(context.Background(), ref, image.PullOptions{Policy: spec.PullNever}); err == nil {
		t.Errorf("PullNever found an image the killed run never finished")
	}
	reg.setTamper(nil)
	ensure(t, s, ref, spec.PullMissing)
}

// TestEnsureRacingPrune runs Ensure while another Store prunes everything
// in a loop: every image Ensure returns must be complete, and stay so until
// its Store is closed.
func TestEnsureRacingPrune(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("raced:1")
	push(t, ref, randomImage(t, 32<<10, 3))
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		p := openStore(t, dir)
		for ctx.Err() == nil {
			if _, err := p.Prune(ctx, true); err != nil && ctx.Err() == nil {
				t.Errorf("Prune: %v", err)
				return
			}
		}
	})
	for i := range 30 {
		s, err := image.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Ensure(ctx, ref, image.PullOptions{})
		if err != nil {
			t.Fatalf("Ensure %d: %v", i, err)
		}
		time.Sleep(time.Millisecond) // give Prune a chance at the pinned layers
		for _, l := range img.Layers {
			if ents, err := os.ReadDir(l); err != nil || len(ents) == 0 {
				t.Fatalf("Ensure %d: layer %s vanished under Prune (%v)", i, l, err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(l), ".done")); err != nil {
				t.Fatalf("Ensure %d: %v", i, err)
			}
		}
		_ = s.Close()
	}
	cancel()
	wg.Wait()
}
