package main

// The coldpull mode (-mode coldpull): a first pull from an empty cache,
// ephem against Docker, from the same registry on 127.0.0.1, in one run.
//
//	go run ./hack/bench -mode coldpull [-runs 5] [-coldpull-mb 300] [-ephem BIN] [-ephem-base BIN]
//
// Two images are pushed to a registry on 127.0.0.1 (Debian's
// docker-registry): busybox, and an image of 8 layers totalling about
// COLDPULL-MB MiB (busybox, one large layer of many files, six small
// ones). Their content is half random, half compressible text, gzipped,
// and holds a file unique to this run, so that no layer is already known
// to the test daemon. The cases run round by round in a rotating order,
// after one untimed warm-up each:
//
//   - ephem-cold-IMG: ephem debug -q pid:PID --image IMG -- true with a new,
//     empty cache directory (removed, and `sync` run, after each run,
//     untimed);
//   - ephem-base-cold-IMG: the same with -ephem-base's binary (say, of an
//     earlier commit), for a before/after comparison in the same run;
//   - docker-cold-IMG: docker pull IMG, then docker run --rm --network none
//     IMG true, on the test daemon of hack/dockerd.sh, the image removed
//     (docker rmi, untimed) before each run.
//
// ephem's CPU time and peak RSS come from its rusage (the process and the
// children it waits for), through /usr/bin/time; Docker's CPU time is what dockerd and its
// containerd used meanwhile (/proc/PID/stat, children included), without
// the client, shims and runc. EPHEM_DEBUG_TIMING is set for ephem, and the
// median of each phase it prints is reported. With
// EPHEM_BENCH_COLDPULL_SERVE=1 it only builds and serves the images, until
// interrupted, for measuring by hand.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/ephem-dev/ephem/internal/e2eutil"
	"github.com/ephem-dev/ephem/internal/testimages"
)

// coldSample is one timed cold pull.
type coldSample struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // KiB; 0 when not measured
	phases map[string]time.Duration
	order  []string // phase names as printed
	layers string   // ephem's "pull layers:" line
}

func (s coldSample) wallTime() time.Duration { return s.wall }

// coldImage is one pushed image.
type coldImage struct {
	name       string // "busybox" or "large"
	ref        string
	compressed int64 // sum of the layers' blob sizes
	layers     int
}

// coldCase is one measured cold pull.
type coldCase struct {
	name string
	what string
	img  *coldImage
	run  func(ctx context.Context) (coldSample, error)
}

// runColdPull runs the coldpull mode and prints its report on stdout.
func runColdPull(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	load0 := loadAvg()
	work, err := os.MkdirTemp(o.workDir, "ephem-bench-cold-")
	if err != nil {
		return fmt.Errorf("creating a work directory: %w", err)
	}
	undo = append(undo, func() { _ = os.RemoveAll(work) })
	ephem := o.ephem
	if ephem == "" {
		logf(stderr, "building ephem (hack/build.sh)")
		if ephem, _, err = e2eutil.BuildRelease(ctx, filepath.Join(work, "release")); err != nil {
			return err
		}
	}
	bb, err := testimages.Busybox(ctx, testimages.DefaultCacheDir())
	if err != nil {
		return err
	}
	addr, stopRegistry, err := testimages.StartRegistry(ctx, filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	undo = append(undo, func() { _ = stopRegistry() })
	nonce := strconv.FormatInt(time.Now().UnixNano(), 10)
	logf(stderr, "building and pushing the images (%d MiB)", o.coldMB)
	small, large, err := buildColdImages(ctx, bb, filepath.Join(work, "layers"), addr, nonce, o.coldMB)
	if err != nil {
		return err
	}
	if os.Getenv("EPHEM_BENCH_COLDPULL_SERVE") != "" { // for profiling by hand
		logf(stderr, "serving %s and %s until interrupted", small.ref, large.ref)
		<-ctx.Done()
		return nil
	}
	tg, err := e2eutil.StartNamespaced(ctx)
	if err != nil {
		return err
	}
	undo = append(undo, tg.Stop)
	logf(stderr, "starting the test Docker daemon (hack/dockerd.sh)")
	host, release, err := e2eutil.AcquireDockerd(ctx)
	if err != nil {
		return err
	}
	undo = append(undo, release)
	dockerEnv := e2eutil.DockerEnv(host)
	undo = append(undo, func() {
		_ = command(context.Background(), dockerEnv, e2eutil.DockerClient, "rmi", "-f", small.ref, large.ref)
	})

	var cases []coldCase
	n := 0
	for _, img := range []*coldImage{small, large} {
		for _, bin := range []struct{ name, path string }{{"ephem", ephem}, {"ephem-base", o.base}} {
			if bin.path == "" {
				continue
			}
			cases = append(cases, coldCase{name: bin.name + "-cold-" + img.name, img: img,
				what: fmt.Sprintf("%s debug -q pid:PID --image %s -- true (empty cache)", bin.name, img.name),
				run: func(ctx context.Context) (coldSample, error) {
					n++
					return ephemCold(ctx, bin.path, filepath.Join(work, "cache-"+strconv.Itoa(n)), tg.PID, img.ref)
				}})
		}
		cases = append(cases, coldCase{name: "docker-cold-" + img.name, img: img,
			what: fmt.Sprintf("docker pull %s && docker run --rm --network none %s true", img.name, img.name),
			run: func(ctx context.Context) (coldSample, error) {
				return dockerCold(ctx, dockerEnv, img.ref, []string{small.ref, large.ref})
			}})
	}
	for _, c := range cases {
		logf(stderr, "warm-up: %s", c.name)
		if _, err := c.run(ctx); err != nil {
			return fmt.Errorf("warm-up of %s: %w", c.name, err)
		}
	}
	samples := map[string][]coldSample{}
	for i := range o.runs {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			s, err := c.run(ctx)
			if err != nil {
				return fmt.Errorf("run %d of %s: %w", i+1, c.name, err)
			}
			samples[c.name] = append(samples[c.name], s)
		}
		logf(stderr, "round %d/%d done", i+1, o.runs)
	}
	return writeColdReport(stdout, o, cases, samples, load0, loadAvg())
}

// ephemCold runs one cold ephem debug with a fresh cache dir, removed after.
func ephemCold(ctx context.Context, bin, cache string, pid int, ref string) (coldSample, error) {
	defer func() {
		_ = command(context.Background(), nil, bin, "--cache-dir", cache, "gc")
		_ = os.RemoveAll(cache)
		_ = command(context.Background(), nil, "sync")
	}()
	// Through GNU time, which forks: a child this process starts shares its
	// memory until exec (CLONE_VM), and its ru_maxrss would count ours.
	rusage := cache + ".time"
	cmd := exec.CommandContext(ctx, "/usr/bin/time", "-f", "%M %U %S", "-o", rusage,
		bin, "debug", "-q", "pid:"+strconv.Itoa(pid), "--image", ref, "--", "true")
	cmd.Env = append(os.Environ(), "EPHEM_CACHE_DIR="+cache, "EPHEM_DEBUG_TIMING=1")
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	start := time.Now()
	err := cmd.Run()
	s := coldSample{wall: time.Since(start)}
	if err != nil {
		return s, fmt.Errorf("%s debug: %w: %s", bin, err, errBuf.String())
	}
	b, err := os.ReadFile(rusage) //nolint:gosec // our own work directory
	if err != nil {
		return s, fmt.Errorf("reading /usr/bin/time's output: %w", err)
	}
	_ = os.Remove(rusage)
	var user, sys float64
	if _, err := fmt.Sscanf(string(b), "%d %g %g", &s.maxRSS, &user, &sys); err != nil {
		return s, fmt.Errorf("reading /usr/bin/time's output %q: %w", b, err)
	}
	s.cpu = time.Duration((user + sys) * float64(time.Second))
	s.phases, s.order = parseTiming(errBuf.String())
	for line := range strings.SplitSeq(errBuf.String(), "\n") {
		if l, ok := strings.CutPrefix(line, "pull layers: "); ok {
			s.layers = l
		}
	}
	return s, nil
}

// parseTiming reads the phases of a "timing: a 1.00ms, b 2.00ms; total
// 3.00ms" line.
func parseTiming(out string) (map[string]time.Duration, []string) {
	ph := map[string]time.Duration{}
	var order []string
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		prefix := ""
		rest, ok := strings.CutPrefix(line, "timing: ")
		if !ok {
			if rest, ok = strings.CutPrefix(line, "pull timing: "); !ok {
				continue
			}
			prefix = "pull-"
		}
		rest = strings.ReplaceAll(rest, ";", ",")
		for part := range strings.SplitSeq(rest, ",") {
			f := strings.Fields(part)
			if len(f) != 2 {
				continue
			}
			if d, err := time.ParseDuration(f[1]); err == nil {
				ph[prefix+f[0]] = d
				order = append(order, prefix+f[0])
			}
		}
	}
	return ph, order
}

// dockerCold removes the images, then pulls ref and runs it once.
func dockerCold(ctx context.Context, env []string, ref string, all []string) (coldSample, error) {
	_ = command(ctx, env, e2eutil.DockerClient, append([]string{"rmi", "-f"}, all...)...)
	_ = command(ctx, nil, "sync")
	daemons := dockerDaemons()
	cpu0 := procCPU(daemons)
	start := time.Now()
	if err := command(ctx, env, e2eutil.DockerClient, "pull", "-q", ref); err != nil {
		return coldSample{}, err
	}
	if err := command(ctx, env, e2eutil.DockerClient, "run", "--rm", "--network", "none", ref, "true"); err != nil {
		return coldSample{}, err
	}
	return coldSample{wall: time.Since(start), cpu: procCPU(daemons) - cpu0}, nil
}

// dockerDaemons returns the PIDs of the test dockerd and its children
// (its containerd).
func dockerDaemons() []int {
	dir := os.Getenv("EPHEM_TEST_DOCKER_RUN")
	if dir == "" {
		dir = "/run/ephem-test"
	}
	b, err := os.ReadFile(filepath.Join(dir, "dockerd.pid"))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	pids := []int{pid}
	if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for f := range strings.FieldsSeq(string(c)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
	}
	return pids
}

// procCPU sums utime, stime, cutime and cstime of pids.
func procCPU(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])              // f[0] is field 3 (state)
		for _, k := range []int{11, 12, 13, 14} { // fields 14-17
			if k < len(f) {
				v, _ := strconv.ParseInt(f[k], 10, 64)
				ticks += v
			}
		}
	}
	return time.Duration(ticks) * (time.Second / 100) // USER_HZ
}

// buildColdImages builds and pushes the busybox and large images.
func buildColdImages(ctx context.Context, bb v1.Image, dir, addr, nonce string, mb int) (small, large *coldImage, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	bbLayers, err := bb.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("reading busybox's layers: %w", err)
	}
	if len(bbLayers) == 0 {
		return nil, nil, errors.New("reading busybox's layers: it has none")
	}
	base, err := uniqueLayer(bbLayers[0], filepath.Join(dir, "base.tgz"), nonce)
	if err != nil {
		return nil, nil, err
	}
	cf, err := bb.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	layers := []v1.Layer{base}
	// One large layer of 2/3 of the size in 4 MiB files, six small ones.
	rng := rand.New(rand.NewPCG(1, 2))
	bigMB := mb * 2 / 3
	smallMB := max((mb-bigMB)/6, 1)
	specs := []struct{ files, kib int }{{bigMB / 4, 4096}}
	for range 6 {
		specs = append(specs, struct{ files, kib int }{smallMB * 4, 256})
	}
	for i, sp := range specs {
		p := filepath.Join(dir, fmt.Sprintf("l%d.tgz", i))
		if err := writeFillerLayer(p, i, sp.files, sp.kib, rng, nonce); err != nil {
			return nil, nil, err
		}
		l, err := tarball.LayerFromFile(p, tarball.WithMediaType(types.DockerLayer))
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, l)
	}
	mk := func(name string, ls []v1.Layer) (*coldImage, error) {
		img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.DockerManifestSchema2), ls...)
		if err != nil {
			return nil, err
		}
		c := cf.DeepCopy()
		c.RootFS.DiffIDs = nil
		c.History = nil
		for _, l := range ls {
			d, err := l.DiffID()
			if err != nil {
				return nil, err
			}
			c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, d)
		}
		if img, err = mutate.ConfigFile(img, c); err != nil {
			return nil, err
		}
		ci := &coldImage{name: name, ref: addr + "/ephem/coldpull-" + name + ":" + nonce, layers: len(ls)}
		for _, l := range ls {
			n, err := l.Size()
			if err != nil {
				return nil, err
			}
			ci.compressed += n
		}
		return ci, testimages.Push(ctx, img, ci.ref)
	}
	if small, err = mk("busybox", layers[:1]); err != nil {
		return nil, nil, fmt.Errorf("building the busybox image: %w", err)
	}
	if large, err = mk("large", layers); err != nil {
		return nil, nil, fmt.Errorf("building the large image: %w", err)
	}
	return small, large, nil
}

// uniqueLayer rewrites layer l into p, gzipped, with one more file holding
// nonce, so that its diffID is new.
func uniqueLayer(l v1.Layer, p, nonce string) (v1.Layer, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	err = writeLayer(p, func(tw *tar.Writer) error {
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil { //nolint:gosec // our own image
				return err
			}
		}
		return writeFile(tw, "etc/coldpull-nonce", []byte(nonce+"\n"))
	})
	if err != nil {
		return nil, fmt.Errorf("rewriting busybox's layer: %w", err)
	}
	return tarball.LayerFromFile(p, tarball.WithMediaType(types.DockerLayer))
}

// writeFillerLayer writes a layer of files of kib KiB each, half random
// bytes and half text over 16 letters, under /data<i>/.
func writeFillerLayer(p string, i, files, kib int, rng *rand.Rand, nonce string) error {
	return writeLayer(p, func(tw *tar.Writer) error {
		dir := fmt.Sprintf("data%d", i)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: testimages.Epoch}); err != nil {
			return err
		}
		buf := make([]byte, kib<<10)
		for f := range files {
			half := len(buf) / 2
			for j := 0; j < half; j += 8 {
				v := rng.Uint64()
				for k := 0; k < 8 && j+k < half; k++ {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
			for j := half; j < len(buf); j++ {
				buf[j] = 'a' + byte(rng.IntN(16))
			}
			if err := writeFile(tw, fmt.Sprintf("%s/f%04d.bin", dir, f), buf); err != nil {
				return err
			}
		}
		return writeFile(tw, dir+"/nonce", []byte(nonce+"\n"))
	})
}

// writeLayer writes a gzipped tar to p with fill.
func writeLayer(p string, fill func(tw *tar.Writer) error) (err error) {
	f, err := os.Create(p) //nolint:gosec // the bench's work directory
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	if err := fill(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)),
		ModTime: testimages.Epoch}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
