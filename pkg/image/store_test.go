package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/ephem-dev/ephem/pkg/image"
	"github.com/ephem-dev/ephem/pkg/spec"
)

func diffIDs(t testing.TB, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, _ := l.DiffID()
		out = append(out, d.Hex)
	}
	return out
}

func TestOpenLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := openStore(t, dir)
	if s.Dir() != dir || s.RunDir() != filepath.Join(dir, "run") {
		t.Errorf("Dir %s RunDir %s", s.Dir(), s.RunDir())
	}
	for _, d := range []string{"layers/sha256", "manifests/sha256", "refs", "tmp", "run"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	t.Setenv(image.DirEnv, "/somewhere/else")
	if got := image.DefaultDir(); got != "/somewhere/else" {
		t.Errorf("DefaultDir = %s", got)
	}
	t.Setenv(image.DirEnv, "")
	if got := image.DefaultDir(); got != "/var/lib/ephem" {
		t.Errorf("DefaultDir = %s", got)
	}
}

func TestListRemovePrune(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	base := randomImage(t, 4096, 2)
	a := mutateAppend(t, base, randomImage(t, 4096, 1))
	b := mutateAppend(t, base, randomImage(t, 4096, 1))
	refA, refB := reg.ref("a:1"), reg.ref("b:1")
	push(t, refA, a)
	push(t, refB, b)
	dir := t.TempDir()
	s := openStore(t, dir)
	start := time.Now().Add(-time.Second)
	ensure(t, s, refA, spec.PullMissing)
	ensure(t, s, refB, spec.PullMissing)
	_ = s.Close() // drop the pins, as the run would by exiting

	es, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, e := range es {
		refs = append(refs, e.Ref)
		if e.Size < 3*4096 || e.LastUsed.Before(start) || e.Platform == "" {
			t.Errorf("entry %+v: want Size >= 3 layers of 4096 bytes, a recent LastUsed and a platform", e)
		}
	}
	if diff := cmp.Diff([]string{refA, refB}, refs); diff != "" {
		t.Errorf("List refs (-want +got):\n%s", diff)
	}
	if es[0].Digest != digestOf(t, a) {
		t.Errorf("digest of a: %s", es[0].Digest)
	}

	if err := s.Remove(ctx, refB, reg.ref("never:1")); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Remove of an uncached ref: %v, want ErrNotFound", err)
	}
	if es, _ := s.List(ctx); len(es) != 1 || es[0].Ref != refA {
		t.Fatalf("after Remove: %v", es)
	}
	// Layers stay until Prune.
	if got := len(layerDirs(t, dir)); got != 4 {
		t.Errorf("%d layers after Remove, want 4", got)
	}

	freed, err := openStore(t, dir).Prune(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if freed < 4096 {
		t.Errorf("Prune freed %d bytes, want at least b's own 4096-byte layer", freed)
	}
	got := layerDirs(t, dir)
	slices.Sort(got)
	want := diffIDs(t, a)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layers after Prune (-want +got):\n%s", diff)
	}
	// a still works offline.
	reg.srv.Close()
	s2 := openStore(t, dir)
	ensure(t, s2, refA, spec.PullNever)
	_ = s2.Close()

	// Remove also takes a digest (a 12-digit prefix, as ls shows).
	if err := openStore(t, dir).Remove(ctx, digestOf(t, a).Hex[:12]); err != nil {
		t.Errorf("Remove by digest prefix: %v", err)
	}
	if es, _ := s.List(ctx); len(es) != 0 {
		t.Errorf("List after Remove by digest: %v", es)
	}

	freed, err = openStore(t, dir).Prune(ctx, true)
	if err != nil || freed < 3*4096 {
		t.Errorf("Prune(all) = %d, %v", freed, err)
	}
	if es, _ := s.List(ctx); len(es) != 0 {
		t.Errorf("List after Prune(all): %v", es)
	}
	if got := layerDirs(t, dir); len(got) != 0 {
		t.Errorf("layers after Prune(all): %v", got)
	}
	if ms, _ := os.ReadDir(filepath.Join(dir, "manifests", "sha256")); len(ms) != 0 {
		t.Errorf("manifest records after Prune(all): %d", len(ms))
	}
}

// TestPruneKeepsPinnedLayers checks that layers returned by Ensure to a
// live Store (a running debug container) survive Prune in another Store.
func TestPruneKeepsPinnedLayers(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	ref := reg.ref("pinned:1")
	img := randomImage(t, 1024, 2)
	push(t, ref, img)
	dir := t.TempDir()
	running := openStore(t, dir)
	got := ensure(t, running, ref, spec.PullMissing)

	if _, err := openStore(t, dir).Prune(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, l := range got.Layers {
		if _, err := os.Stat(l); err != nil {
			t.Errorf("pinned layer removed: %v", err)
		}
	}
	_ = running.Close()
	if _, err := openStore(t, dir).Prune(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := layerDirs(t, dir); len(got) != 0 {
		t.Errorf("layers left after the pins were released: %v", got)
	}
	// And the cache still works: the image is pulled again.
	if img2 := ensure(t, openStore(t, dir), ref, spec.PullMissing); img2.Digest != digestOf(t, img) {
		t.Errorf("re-pull digest %s", img2.Digest)
	}
}

func TestGC(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	tmp := filepath.Join(dir, "tmp")
	stale := filepath.Join(tmp, "layer-stale")
	live := filepath.Join(tmp, "layer-live")
	for _, d := range []string{stale + "/fs/usr/bin", live + "/fs"} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stale, "fs/usr/bin/tool"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A live run holds its entry flocked.
	f, err := os.Open(live) //nolint:gosec // test path
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// An entry being created is unlocked for an instant: GC spares young
	// ones whose creator lives (or cannot be told), and removes those a
	// killed run left, at once if the name says its creator is gone.
	young, old := filepath.Join(tmp, ".new-young"), filepath.Join(tmp, ".new-old")
	mine := filepath.Join(tmp, ".new-"+image.OwnerTag()+"123")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(tmp, fmt.Sprintf(".new-%d.4242-123", dead.Process.Pid))
	reused := filepath.Join(tmp, fmt.Sprintf(".new-%d.1-123", os.Getpid()))
	for _, d := range []string{young, old, mine, orphan, reused} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Base(mine), ".new-young", "layer-live"}, tmpEntries(t, dir)); diff != "" {
		t.Errorf("tmp/ after GC (-want +got):\n%s", diff)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Base(mine), ".new-young"}, tmpEntries(t, dir)); diff != "" {
		t.Errorf("tmp/ after Prune (-want +got):\n%s", diff)
	}
}

func TestWarmEnsureTouchesLastUsed(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.ref("used:1")
	push(t, ref, randomImage(t, 1024, 1))
	dir := t.TempDir()
	s := openStore(t, dir)
	ensure(t, s, ref, spec.PullMissing)
	refs, _ := filepath.Glob(filepath.Join(dir, "refs", "*.json"))
	if len(refs) != 1 {
		t.Fatalf("ref files: %v", refs)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(refs[0], old, old); err != nil {
		t.Fatal(err)
	}
	ensure(t, s, ref, spec.PullMissing)
	es, _ := s.List(context.Background())
	if len(es) != 1 || time.Since(es[0].LastUsed) > time.Minute {
		t.Errorf("LastUsed not refreshed: %v", es)
	}
}
