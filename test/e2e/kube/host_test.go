//go:build e2e_kube

package kube_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestListenersLocal checks that every socket the cluster's processes listen
// on is bound to loopback or the node IP on the cluster's own bridge, and
// logs the cluster's memory use.
func TestListenersLocal(t *testing.T) {
	pidFiles, err := filepath.Glob(filepath.Join(cluster.Dir, "run", "*.pid"))
	if err != nil || len(pidFiles) < 7 {
		t.Fatalf("pid files in %s/run: %v, %v; want the 7 components", cluster.Dir, pidFiles, err)
	}
	ours := map[string]string{}
	var rssKB int
	for _, f := range pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid := strings.TrimSpace(string(b))
		ours[pid] = strings.TrimSuffix(filepath.Base(f), ".pid")
		kb := rss(t, pid)
		rssKB += kb
		t.Logf("%-24s pid %-7s RSS %4d MiB", ours[pid], pid, kb/1024)
	}
	t.Logf("cluster components' RSS: %d MiB in total", rssKB/1024)

	out, err := exec.Command("ss", "-H", "-l", "-n", "-t", "-u", "-p").Output()
	if err != nil {
		t.Fatalf("running ss: %v", err)
	}
	node := ""
	if n, err := cluster.Client.CoreV1().Nodes().List(t.Context(), listOpts); err == nil && len(n.Items) == 1 {
		for _, a := range n.Items[0].Status.Addresses {
			if a.Type == "InternalIP" {
				node = a.Address
			}
		}
	}
	if node == "" {
		t.Fatal("finding the node's InternalIP")
	}
	pidRE := regexp.MustCompile(`pid=(\d+)`)
	seen := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		for _, m := range pidRE.FindAllStringSubmatch(l, -1) {
			name, ok := ours[m[1]]
			if !ok {
				continue
			}
			seen++
			host := f[4][:strings.LastIndex(f[4], ":")]
			if host != "127.0.0.1" && host != "[::1]" && host != node {
				t.Errorf("%s listens on %s (%s), want 127.0.0.1 or the node IP %s", name, f[4], f[0], node)
			}
		}
	}
	if seen < 6 {
		t.Errorf("found %d listening sockets of the cluster, want at least 6:\n%s", seen, out)
	}
}

func rss(t *testing.T, pid string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%s/status", pid))
	if err != nil {
		t.Fatalf("reading status of pid %s: %v", pid, err)
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return kb
}
