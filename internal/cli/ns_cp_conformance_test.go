package cli_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ephem-dev/ephem/pkg/runtime"
	"github.com/ephem-dev/ephem/pkg/target"
	"github.com/spf13/pflag"
)

// A backend with only Copier and Inspector, under test-files://, runs
// ephem cp and ephem ns through the real CLI.

func init() {
	runtime.Register(runtime.Registration{Name: "test-files", NewConfig: func() runtime.Config { return filesConfig{} },
		Schemes: []target.Scheme{{Name: "test-files", Prefixes: []string{"test-files://"}, Example: "test-files://NAME", Parse: target.ParseContainer}}})
}

type filesConfig struct{}

func (filesConfig) AddFlags(string, *pflag.FlagSet) {}

func (filesConfig) New(runtime.Env) (runtime.Backend, error) { return &files{}, nil }

type files struct{}

func (*files) CopyFrom(_ context.Context, t target.Ref, p string, o runtime.CopyOptions, w io.Writer) error {
	record("copyFrom %s %s %+v", t.Name, p, o)
	tw := tar.NewWriter(w)
	body := "from " + t.Name
	_ = tw.WriteHeader(&tar.Header{Name: filepath.Base(p), Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(body)),
		ModTime: time.Unix(1e9, 0)})
	_, _ = tw.Write([]byte(body))
	return tw.Close()
}

func (*files) CopyTo(_ context.Context, t target.Ref, p string, o runtime.CopyOptions, r io.Reader) error {
	tr := tar.NewReader(r)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	record("copyTo %s %s %+v %v", t.Name, p, o, names)
	return nil
}

func (*files) Inspect(_ context.Context, t target.Ref) (*runtime.NamespaceReport, error) {
	return &runtime.NamespaceReport{Target: t.Raw, HostFrom: "PID 1", Namespaces: []runtime.Namespace{
		{Type: "mnt", Host: "mnt:[1]", Target: "mnt:[2]"},
		{Type: "net", Host: "net:[3]", Target: "net:[4]", Debug: "net:[4]", Shared: true},
	}, Init: []string{"/server", "-addr", ":80"}, CapEff: "00000000a80425fb", Seccomp: "filter"}, nil
}

func TestConformanceCp(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := execute("cp", "test-files://web:/etc/app.yaml", filepath.Join(dir, "out.yaml"))
	b, _ := os.ReadFile(filepath.Join(dir, "out.yaml"))
	if code != 0 || errOut != "" || string(b) != "from web" || calls() != "copyFrom web /etc/app.yaml {Archive:false FollowLink:false}" {
		t.Errorf("cp out: exit %d %q, file %q, calls %q", code, errOut, b, calls())
	}
	if fi, err := os.Stat(filepath.Join(dir, "out.yaml")); err != nil || fi.Mode() != 0o640 || fi.ModTime().Unix() != 1e9 {
		t.Errorf("cp out: mode and time not kept: %v %v", fi, err)
	}
	code, _, errOut = execute("cp", "-a", filepath.Join(dir, "out.yaml"), "test-files://web:/tmp/")
	if want := "copyTo web /tmp/ {Archive:true FollowLink:false} [out.yaml]"; code != 0 || errOut != "" || calls() != want {
		t.Errorf("cp in: exit %d %q, calls %q, want %q", code, errOut, calls(), want)
	}
	for _, verb := range [][]string{{"cp", "test-noattach://web:/a", dir}, {"ns", "test-noattach://web"}} {
		code, _, errOut = execute(verb...)
		if want := "ephem: unsupported: test-noattach:// targets do not support " + verb[0] + " yet\n"; code != 69 || errOut != want {
			t.Errorf("%s without the capability: exit %d %q, want 69 %q", verb[0], code, errOut, want)
		}
	}
}

func TestConformanceNS(t *testing.T) {
	code, out, errOut := execute("ns", "test-files://web")
	for _, want := range []string{"NAMESPACE", "mnt        1     2       (new)  own", "net        3     4       4      shared",
		"PID 1:    /server -addr :80", "CapEff:   00000000a80425fb", "seccomp:  filter"} {
		if !strings.Contains(out, want) {
			t.Errorf("ns table lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || errOut != "" {
		t.Errorf("ns: exit %d %q", code, errOut)
	}
	code, out, _ = execute("ns", "test-files://web", "-o", "json")
	var r runtime.NamespaceReport
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || len(r.Namespaces) != 2 || !r.Namespaces[1].Shared {
		t.Errorf("ns -o json: exit %d %v %+v", code, err, r)
	}
}
