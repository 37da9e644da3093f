//go:build e2e_kube

package kube_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// krewVersion is the krew hack/krewcheck pins, built once into
// /var/cache/ephem/krew.
const krewVersion = "v0.4.3"

// TestKrewInstall builds the amd64 release with hack/release.sh, installs
// its tarball with krew itself from the release's manifest (krew install
// --manifest --archive, as a user would from the krew index), and runs the
// plugin through the cluster's kubectl: "kubectl ephem version" is the
// release's and "kubectl ephem debug" reaches a shell-less pod's server.
func TestKrewInstall(t *testing.T) {
	ctx, ns, w := distrolessWorkload(t, "web", 20*time.Minute)
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	rel := t.TempDir()
	release := exec.CommandContext(ctx, filepath.Join(root, "hack", "release.sh"), rel)
	release.Dir = root
	release.Env = append(os.Environ(), "ARCHES=amd64", "EPHEM_RELEASE_DIRTY=1", "RELEASE_URL=file://"+rel)
	if out, err := release.CombinedOutput(); err != nil {
		t.Fatalf("hack/release.sh: %v\n%s", err, out)
	}
	manifest, err := os.ReadFile(filepath.Join(rel, "ephem.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^  version: (v\S+)$`).FindSubmatch(manifest)
	if m == nil {
		t.Fatalf("no version in the krew manifest:\n%s", manifest)
	}
	version := string(m[1])
	tarball := filepath.Join(rel, "ephem_"+version+"_linux_amd64.tar.gz")

	krewRoot := t.TempDir()
	krewEnv := append(os.Environ(), "KREW_ROOT="+krewRoot, "KREW_NO_UPGRADE_CHECK=1")
	install := exec.CommandContext(ctx, krewBinary(ctx, t, root), "install", "--manifest="+filepath.Join(rel, "ephem.yaml"), "--archive="+tarball)
	install.Env = krewEnv
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("krew install: %v\n%s", err, out)
	}
	// krew's layout: the tarball's files in store/ephem/VERSION, bin/kubectl-ephem a link to them.
	link, err := os.Readlink(filepath.Join(krewRoot, "bin", "kubectl-ephem"))
	if want := filepath.Join(krewRoot, "store", "ephem", version, "kubectl-ephem"); err != nil || link != want {
		t.Fatalf("bin/kubectl-ephem -> %q (%v), want %s", link, err, want)
	}

	env := append(os.Environ(), "PATH="+filepath.Join(krewRoot, "bin")+":"+os.Getenv("PATH"), "KUBECONFIG="+cluster.Kubeconfig)
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, cluster.KubectlPath, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var info map[string]string
	out := kubectl("ephem", "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil || info["version"] != version || info["platform"] != "linux/amd64" || info["commit"] == "" {
		t.Errorf("kubectl ephem version -o json = %q (%v), want version %s on linux/amd64", out, err, version)
	}
	if out := kubectl("ephem", "debug", "pod/"+w.Pod.Name, "-n", ns, "--image", cluster.Image("busybox"), "--", "wget", "-qO-", "localhost:80"); !strings.Contains(out, "OK - GET: Request completed") {
		t.Errorf("kubectl ephem debug: %s", out)
	}
	if out := kubectl("ephem", "debug", "pod/"+w.Pod.Name, "-n", ns, "-q", "--image", cluster.Image("busybox"), "--", "true"); strings.Contains(out, "ephem:") {
		t.Errorf("kubectl ephem debug -- true: %s", out)
	}
	if help := kubectl("ephem", "--help"); !strings.Contains(help, "kubectl ephem [command]") {
		t.Errorf("kubectl ephem --help does not present itself as kubectl ephem:\n%s", help)
	}
	if list := kubectl("plugin", "list"); !strings.Contains(list, filepath.Join(krewRoot, "bin", "kubectl-ephem")) {
		t.Errorf("kubectl plugin list does not list krew's kubectl-ephem:\n%s", list)
	}
}

// krewBinary returns krew, built once from hack/krewcheck's pinned module
// into /var/cache/ephem/krew.
func krewBinary(ctx context.Context, t *testing.T, root string) string {
	t.Helper()
	dir := "/var/cache/ephem/krew"
	bin := filepath.Join(dir, "krew-"+krewVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".build"
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, "sigs.k8s.io/krew/cmd/krew")
	build.Dir = filepath.Join(root, "hack", "krewcheck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building krew %s: %v\n%s", krewVersion, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}
