// Command images builds ephem's test images (see internal/testimages) and
// pushes them to a plain-HTTP registry or writes them to an OCI layout.
//
//	images [-cache DIR] push -registry 127.0.0.1:5050 [-large-mb N] [NAME...]
//	images [-cache DIR] layout -dir DIR [-large-mb N] [NAME...]
//	images [-cache DIR] serve -dir DIR [-large-mb N] [NAME...]
//	images registry-config -registry 127.0.0.1:5050 -dir DIR
//
// NAME is one of pause, busybox, distroless, toolbox (default: all). push
// and layout print one "NAME=REFERENCE" line per image. serve starts a
// registry on 127.0.0.1 (storage under DIR), pushes the images, prints
// REGISTRY=ADDR and runs until interrupted. registry-config prints the
// docker-registry configuration the tests use, listening on -registry with
// its storage in DIR (hack/cluster runs its registry with it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ephem-dev/ephem/internal/testimages"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

// options are the flags shared by every verb.
type options struct {
	cache    string
	registry string
	dir      string
	largeMB  int
	names    []string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("images", flag.ContinueOnError)
	global.SetOutput(stderr)
	var o options
	global.StringVar(&o.cache, "cache", testimages.DefaultCacheDir(), "cache directory")
	if err := global.Parse(args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		return errors.New("usage: images [-cache DIR] push|layout|serve|registry-config [flags] [NAME...]")
	}
	verb := global.Arg(0)
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.largeMB, "large-mb", 0, "also build the large image of this many MiB")
	switch verb {
	case "push":
		fs.StringVar(&o.registry, "registry", "", "registry address (host:port)")
	case "layout", "serve":
		fs.StringVar(&o.dir, "dir", "", "directory of the OCI layout or registry")
	case "registry-config":
		fs.StringVar(&o.registry, "registry", "", "address to listen on (host:port)")
		fs.StringVar(&o.dir, "dir", "", "the registry's storage directory")
	default:
		return fmt.Errorf("unknown verb %q", verb)
	}
	if err := fs.Parse(global.Args()[1:]); err != nil {
		return err
	}
	o.names = fs.Args()
	if len(o.names) == 0 {
		o.names = testimages.Names()
	}
	switch verb {
	case "push":
		if o.registry == "" {
			return errors.New("push: -registry is required")
		}
		return push(ctx, o, stdout, stderr)
	case "layout":
		return layout(ctx, o, stdout)
	case "registry-config":
		if o.registry == "" || o.dir == "" {
			return errors.New("registry-config: -registry and -dir are required")
		}
		_, err := io.WriteString(stdout, testimages.RegistryConfig(o.registry, o.dir))
		return err
	default:
		return serve(ctx, o, stdout, stderr)
	}
}

// image is one image to publish under a ref name.
type image struct {
	name string
	img  v1.Image
}

func build(ctx context.Context, o options) ([]image, error) {
	var out []image
	for _, n := range o.names {
		b, ok := testimages.Standard[n]
		if !ok {
			return nil, fmt.Errorf("unknown image %q (known: %v)", n, testimages.Names())
		}
		img, err := b(ctx, o.cache)
		if err != nil {
			return nil, err
		}
		out = append(out, image{name: n, img: img})
	}
	if o.largeMB > 0 {
		img, err := testimages.Large(ctx, o.cache, o.largeMB)
		if err != nil {
			return nil, err
		}
		out = append(out, image{name: "large", img: img})
	}
	return out, nil
}

func ref(o options, registry string, im image) string {
	if im.name == "large" {
		return testimages.LargeRef(registry, o.largeMB)
	}
	return testimages.Ref(registry, im.name)
}

func push(ctx context.Context, o options, stdout, stderr io.Writer) error {
	imgs, err := build(ctx, o)
	if err != nil {
		return err
	}
	for _, im := range imgs {
		start := time.Now()
		r := ref(o, o.registry, im)
		if err := testimages.Push(ctx, im.img, r); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "images: pushed %s in %.1fs\n", r, time.Since(start).Seconds())
		fmt.Fprintf(stdout, "%s=%s\n", im.name, r)
	}
	return nil
}

func layout(ctx context.Context, o options, stdout io.Writer) error {
	if o.dir == "" {
		return errors.New("layout: -dir is required")
	}
	imgs, err := build(ctx, o)
	if err != nil {
		return err
	}
	for _, im := range imgs {
		r := ref(o, "ephem.local", im)
		if err := testimages.WriteLayout(o.dir, im.img, r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s=%s\n", im.name, r)
	}
	return nil
}

func serve(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if o.dir == "" {
		return errors.New("serve: -dir is required")
	}
	addr, stop, err := testimages.StartRegistry(ctx, o.dir)
	if err != nil {
		return err
	}
	defer stop() //nolint:errcheck // best effort on the way out
	o.registry = addr
	if err := push(ctx, o, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "REGISTRY=%s\n", addr)
	<-ctx.Done()
	return nil
}
